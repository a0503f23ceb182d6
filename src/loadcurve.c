/*-------------------------------------------------------------------------
 * loadcurve.c
 *	  Parsing Switchgrid's LOADCURVE JSON straight into rows, and the SQL
 *	  function switchgrid_loadcurve().
 *
 * A 24-month curve at PT10M is over 100,000 values.  The body is parsed once,
 * in place, with PostgreSQL's callback JSON parser, and each value becomes a
 * row as soon as it is read: no jsonb, no second copy of the curve.  Only if
 * "values" comes before "startsAt" or "period" (JSON objects are unordered)
 * are values held, compactly, until the step is known.
 *
 * Timestamps: Switchgrid's LOADCURVE output is UTC, each point stamped at
 * the START of its step.  Sub-day steps are fixed durations; a P1D step is a
 * calendar day in Europe/Paris, so a DST day lasts 23 or 25 hours.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "http.h"
#include "input.h"
#include "loadcurve.h"
#include "request.h"
#include "store.h"

#define SG_CURVE_TZ "Europe/Paris"

/* One series: the curve of one PRM. */
typedef struct SgSeries
{
	const char *prm;
	bool		have_start;
	TimestampTz start;
	bool		have_step;
	int64		step_usec;		/* sub-day step */
	int			step_days;		/* or whole Paris days */
	int64		index;			/* position of the next value */
	/* values read before the step was known */
	double	   *held;
	bool	   *held_null;
	int64		nheld;
	int64		held_cap;
} SgSeries;

typedef struct SgCurveParse
{
	int			depth;
	int			series_depth;	/* 1: single-PRM shape, 2: per-PRM shape */
	const char *field;			/* current field of the series object */
	char	   *top_key;		/* current key of the top-level object */
	bool		in_values;
	SgSeries	series;
	const char *default_prm;
	SgCurvePointFn fn;
	void	   *fn_arg;
	int64		points;
	const char *what;
	pg_tz	   *tz;
} SgCurveParse;

static void sg_curve_malformed(SgCurveParse *st, const char *reason) pg_attribute_noreturn();

static void
sg_curve_malformed(SgCurveParse *st, const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("malformed response from Switchgrid for %s", st->what),
			 errdetail_internal("%s", reason)));
}

static bool
sg_is_series_field(const char *f)
{
	return strcmp(f, "period") == 0 || strcmp(f, "startsAt") == 0 ||
		strcmp(f, "endsAt") == 0 || strcmp(f, "values") == 0;
}

/*
 * Parses the ISO 8601 durations a load curve uses: PnD, or PT with H, M
 * and S parts (PT10M, PT600S, PT1H, PT1H30M).  Returns false otherwise.
 */
static bool
sg_parse_iso_period(const char *s, int64 *usec, int *days)
{
	const char *p = s;
	int64		secs = 0;
	int			d = 0;
	bool		in_time = false;
	bool		any = false;
	char		seen[4] = {0, 0, 0, 0}; /* D, H, M, S: each unit once */

	if (*p != 'P' && *p != 'p')
		return false;
	p++;
	while (*p)
	{
		int64		n = 0;
		const char *q;

		if (*p == 'T' || *p == 't')
		{
			if (in_time)
				return false;
			in_time = true;
			p++;
			continue;
		}
		q = p;
		/* a step of more than a year is no load curve: bound the numbers */
		while (*p >= '0' && *p <= '9')
		{
			n = n * 10 + (*p++ - '0');
			if (n > 366 * 86400)
				return false;
		}
		if (p == q)
			return false;
		switch (pg_toupper((unsigned char) *p))
		{
			case 'D':
				if (in_time || seen[0]++)
					return false;
				d = (int) Min(n, 366);
				break;
			case 'H':
				if (!in_time || seen[1]++)
					return false;
				secs += n * 3600;
				break;
			case 'M':
				if (!in_time || seen[2]++)
					return false;
				secs += n * 60;
				break;
			case 'S':
				if (!in_time || seen[3]++)
					return false;
				secs += n;
				break;
			default:
				return false;
		}
		p++;
		any = true;
	}
	if (!any || (d > 0 && secs > 0) || (d == 0 && secs == 0))
		return false;
	*usec = secs * USECS_PER_SEC;
	*days = d;
	return true;
}

const char *
sg_loadcurve_period_param(const char *period)
{
	static const struct
	{
		const char *name;
		int64		secs;
	}			periods[] = {
		{"5min", 300}, {"10min", 600}, {"15min", 900}, {"30min", 1800}, {"1h", 3600},
	};
	int64		usec;
	int			days;
	size_t		i;

	if (strcmp(period, "1d") == 0)
		return "1d";
	for (i = 0; i < lengthof(periods); i++)
	{
		if (strcmp(period, periods[i].name) == 0)
			return periods[i].name;
	}
	if (sg_parse_iso_period(period, &usec, &days))
	{
		if (days == 1)
			return "1d";
		for (i = 0; i < lengthof(periods); i++)
		{
			if (days == 0 && usec == periods[i].secs * USECS_PER_SEC)
				return periods[i].name;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid load-curve period \"%s\"", period),
			 errdetail("Allowed: 5min, 10min, 15min, 30min, 1h, 1d, or the same as ISO 8601 (PT10M, PT600S, PT1H, P1D).")));
	return NULL;				/* keep compiler quiet */
}

/* The timestamp of step "i" of a series whose start and step are known. */
static TimestampTz
sg_step_time(SgCurveParse *st, SgSeries *s, int64 i)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	TimestampTz result;

	if (s->step_days == 0)
	{
		int64		offset;

		if (pg_mul_s64_overflow(i, s->step_usec, &offset) ||
			pg_add_s64_overflow(s->start, offset, &result) ||
			!IS_VALID_TIMESTAMP(result))
			sg_curve_malformed(st, "a timestamp is out of range.");
		return result;
	}

	/* whole days: move along the Paris calendar, keep the wall-clock time */
	if (timestamp2tm(s->start, &tz, &tm, &fsec, NULL, st->tz) != 0)
		sg_curve_malformed(st, "startsAt is out of range.");
	j2date(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) + (int) (i * s->step_days),
		   &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tm.tm_isdst = -1;
	tz = DetermineTimeZoneOffset(&tm, st->tz);
	if (tm2timestamp(&tm, fsec, &tz, &result) != 0)
		sg_curve_malformed(st, "a timestamp is out of range.");
	return result;
}

static void
sg_emit(SgCurveParse *st, SgSeries *s, bool isnull, double v)
{
	TimestampTz ts = sg_step_time(st, s, s->index);

	s->index++;
	st->points++;
	st->fn(st->fn_arg, s->prm, ts, isnull, v);
}

static void
sg_hold(SgSeries *s, bool isnull, double v)
{
	if (s->nheld == s->held_cap)
	{
		s->held_cap = s->held_cap ? s->held_cap * 2 : 1024;
		if (s->held)
		{
			s->held = repalloc_huge(s->held, s->held_cap * sizeof(double));
			s->held_null = repalloc_huge(s->held_null, s->held_cap * sizeof(bool));
		}
		else
		{
			s->held = palloc(s->held_cap * sizeof(double));
			s->held_null = palloc(s->held_cap * sizeof(bool));
		}
	}
	s->held[s->nheld] = v;
	s->held_null[s->nheld] = isnull;
	s->nheld++;
}

static void
sg_series_begin(SgCurveParse *st, const char *prm)
{
	memset(&st->series, 0, sizeof(SgSeries));
	st->series.prm = prm;
}

static void
sg_series_end(SgCurveParse *st)
{
	SgSeries   *s = &st->series;
	int64		i;

	if (s->nheld > 0)
	{
		if (!s->have_start || !s->have_step)
			sg_curve_malformed(st, "A series has values but no startsAt or period.");
		for (i = 0; i < s->nheld; i++)
			sg_emit(st, s, s->held_null[i], s->held[i]);
		pfree(s->held);
		pfree(s->held_null);
	}
	memset(s, 0, sizeof(SgSeries));
}

static SG_JSON_CB
sg_cp_object_start(void *state)
{
	SgCurveParse *st = (SgCurveParse *) state;

	st->depth++;
	if (st->in_values)
		sg_curve_malformed(st, "A value is an object.");
	if (st->depth == 2 && st->series_depth != 1)
	{
		/* {"<prm>": {...}}: the key names the series, and must be a PRM */
		if (strlen(st->top_key) != 14 ||
			strspn(st->top_key, "0123456789") != 14)
			sg_curve_malformed(st, "A per-PRM key is not a 14-digit PRM.");
		st->series_depth = 2;
		sg_series_begin(st, pstrdup(st->top_key));
	}
	else if (st->depth > 2 || (st->depth == 2 && st->series_depth == 1))
		sg_curve_malformed(st, "Unexpected nested object.");
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_object_end(void *state)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->depth == st->series_depth)
		sg_series_end(st);
	st->depth--;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_field_start(void *state, char *fname, bool isnull)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->depth == 1)
	{
		if (st->top_key)
			pfree(st->top_key);
		st->top_key = pstrdup(fname);
		if (sg_is_series_field(fname))
		{
			if (st->series_depth == 2)
				sg_curve_malformed(st, "Mixed single-PRM and per-PRM shapes.");
			if (st->series_depth == 0)
			{
				st->series_depth = 1;
				sg_series_begin(st, st->default_prm);
			}
		}
	}
	if (st->depth == st->series_depth)
	{
		if (strcmp(fname, "period") == 0)
			st->field = "period";
		else if (strcmp(fname, "startsAt") == 0)
			st->field = "startsAt";
		else if (strcmp(fname, "values") == 0)
			st->field = "values";
		else
			st->field = NULL;	/* endsAt and anything else: ignored */
	}
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_array_start(void *state)
{
	SgCurveParse *st = (SgCurveParse *) state;

	st->depth++;
	if (st->in_values)
		sg_curve_malformed(st, "A value is an array.");
	if (st->depth == st->series_depth + 1 && st->field != NULL &&
		strcmp(st->field, "values") == 0)
		st->in_values = true;
	else if (st->depth <= st->series_depth + 1)
		sg_curve_malformed(st, "Unexpected array.");
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_array_end(void *state)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->in_values && st->depth == st->series_depth + 1)
		st->in_values = false;
	st->depth--;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_scalar(void *state, char *token, JsonTokenType tokentype)
{
	SgCurveParse *st = (SgCurveParse *) state;
	SgSeries   *s = &st->series;

	if (st->in_values && st->depth == st->series_depth + 1)
	{
		bool		isnull = false;
		double		v = 0;

		if (tokentype == JSON_TOKEN_NULL)
			isnull = true;
		else if (tokentype == JSON_TOKEN_NUMBER || tokentype == JSON_TOKEN_STRING)
		{
			char	   *end;

			errno = 0;
			v = strtod(token, &end);
			if (end == token || *end != '\0' || errno != 0 || !isfinite(v))
				sg_curve_malformed(st, "A value is not a number.");
		}
		else
			sg_curve_malformed(st, "A value is not a number.");

		if (s->have_start && s->have_step && s->nheld == 0)
			sg_emit(st, s, isnull, v);
		else
			sg_hold(s, isnull, v);
	}
	else if (st->depth == st->series_depth && st->depth > 0)
	{
		/* endsAt and unknown fields are not needed */
		if (st->field != NULL && strcmp(st->field, "values") == 0 &&
			tokentype != JSON_TOKEN_NULL)
			sg_curve_malformed(st, "\"values\" is not an array.");
		if (st->field != NULL && strcmp(st->field, "values") != 0)
		{
			if (tokentype != JSON_TOKEN_STRING)
				sg_curve_malformed(st, "period and startsAt must be strings.");
			if (strcmp(st->field, "period") == 0)
			{
				if (!sg_parse_iso_period(token, &s->step_usec, &s->step_days))
					sg_curve_malformed(st, psprintf("Unknown period \"%s\".", token));
				s->have_step = true;
			}
			else
			{
				s->start = sg_api_timestamp_in(token);
				if (TIMESTAMP_NOT_FINITE(s->start))
					sg_curve_malformed(st, "startsAt is not a finite time.");
				s->have_start = true;
			}
		}
	}
	else if (st->depth == 0 || (st->depth == 1 && st->series_depth == 2))
		sg_curve_malformed(st, "The body is not a load-curve object.");
	/* (an unknown top-level field before the series fields is ignored) */
	if (token)
		pfree(token);
	SG_JSON_RETURN;
}

int64
sg_parse_loadcurve(char *body, size_t len, const char *default_prm,
				   SgCurvePointFn fn, void *arg, const char *what)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	SgCurveParse st;
	JsonParseErrorType rc;

	memset(&st, 0, sizeof(st));
	st.default_prm = default_prm;
	st.fn = fn;
	st.fn_arg = arg;
	st.what = what;
	st.tz = pg_tzset(SG_CURVE_TZ);
	if (st.tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("time zone \"%s\" is not available", SG_CURVE_TZ)));

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = sg_cp_object_start;
	sem.object_end = sg_cp_object_end;
	sem.object_field_start = sg_cp_field_start;
	sem.array_start = sg_cp_array_start;
	sem.array_end = sg_cp_array_end;
	sem.scalar = sg_cp_scalar;

	lex = sg_make_json_lexer(body, len);
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
		sg_curve_malformed(&st, json_errdetail(rc, lex));
	return st.points;
}

/* Collects the rows of switchgrid_loadcurve() into its tuplestore. */
typedef struct SgCurveSink
{
	Tuplestorestate *store;
	TupleDesc	desc;
	const char *last_prm;
	Datum		prm_datum;
} SgCurveSink;

static void
sg_curve_to_tuplestore(void *arg, const char *prm, TimestampTz ts,
					   bool isnull, double power_w)
{
	SgCurveSink *sink = (SgCurveSink *) arg;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (prm != sink->last_prm)
	{
		sink->prm_datum = prm ? CStringGetTextDatum(prm) : (Datum) 0;
		sink->last_prm = prm;
	}
	values[0] = sink->prm_datum;
	nulls[0] = (prm == NULL);
	values[1] = TimestampTzGetDatum(ts);
	values[2] = Float8GetDatum(power_w);
	nulls[2] = isnull;
	tuplestore_putvalues(sink->store, sink->desc, values, nulls);
}

PG_FUNCTION_INFO_V1(switchgrid_loadcurve);

/*
 * switchgrid_loadcurve(request_id uuid, period text DEFAULT NULL)
 *	 RETURNS TABLE(prm text, ts timestamptz, power_w double precision)
 */
Datum
switchgrid_loadcurve(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *id;
	char	   *query;
	char	   *what;
	SgHttpResponse *resp;
	SgCurveSink sink;
	char	   *prm;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("request_id must not be null")));
	id = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(0)));
	if (PG_ARGISNULL(1))
		query = pstrdup("format=json");
	else
		query = psprintf("format=json&period=%s",
						 sg_loadcurve_period_param(sg_text_arg_capped(fcinfo, 1, "period",
																	  SG_MAX_WORD_CHARS)));

	InitMaterializedSRF(fcinfo, 0);

	what = psprintf("load curve of request %s", id);
	resp = sg_api_call(SG_HTTP_GET, psprintf("/request/%s/data", id), query,
					   NULL, SG_HTTP_ALLOW_404, what);
	if (resp->status == 404)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no load-curve data for request %s", id),
				 errdetail("Switchgrid has no data for this request, or not yet."),
				 errhint("Check that the request is a LOADCURVE request and that switchgrid_order_status() shows it as SUCCESS.")));

	/* a one-PRM payload does not name its PRM: the recorded request does */
	{
		Oid			types[1] = {UUIDOID};
		Datum		values[1];
		Datum		d;
		bool		isnull;

		values[0] = PG_GETARG_DATUM(0);
		(void) sg_spi_as_owner("SELECT prms[1] FROM switchgrid.requests"
							   " WHERE request_id = $1 AND cardinality(prms) = 1",
							   1, types, values, NULL, &d, &isnull);
		prm = isnull ? NULL : TextDatumGetCString(d);
	}

	memset(&sink, 0, sizeof(sink));
	sink.store = rsinfo->setResult;
	sink.desc = rsinfo->setDesc;
	(void) sg_parse_loadcurve(resp->body, resp->len, prm,
							  sg_curve_to_tuplestore, &sink, what);
	pfree(resp->body);
	return (Datum) 0;
}
