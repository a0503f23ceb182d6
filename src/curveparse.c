/*-------------------------------------------------------------------------
 * curveparse.c
 *	  Switchgrid's LOADCURVE JSON, parsed without the server: bytes in,
 *	  points out through a callback, errors returned as values.
 *
 * A 24-month curve at PT10M is over 100,000 values.  The body is parsed once,
 * in place, with PostgreSQL's callback JSON parser, and each value is handed
 * on as soon as it is read: no jsonb, no second copy of the curve.  Only if
 * "values" comes before "startsAt" or "period" (JSON objects are unordered)
 * are values held, compactly, until the step is known.
 *
 * Timestamps: Switchgrid's LOADCURVE output is UTC, each point stamped at
 * the START of its step.  Sub-day steps are fixed durations; a P1D step is a
 * calendar day in Europe/Paris, which the caller computes (SgCurveAddDaysFn).
 *
 * This file knows nothing of SQL, SPI or HTTP and never raises an error: the
 * first problem found is kept as a sentence and returned, so the same source
 * builds into the fuzz harness with -DFRONTEND (test/fuzz).  Everything it
 * allocates is freed before it returns, as the harness has no memory
 * contexts.
 *-------------------------------------------------------------------------
 */
#include "compat.h"				/* postgres.h or postgres_fe.h, and the JSON shims */

#include <math.h>

#include "common/int.h"
#include "common/jsonapi.h"

#include "curveparse.h"
#include "iso8601.h"

/* the top-level object, a per-PRM object, a values array */
#define SG_CURVE_MAX_DEPTH 3

#ifdef FRONTEND
#define repalloc_huge repalloc
#endif

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
	char	  **prms;			/* the keys of the per-PRM series so far */
	int			nprms;
	int			prms_cap;
	bool		in_values;
	SgSeries	series;
	const SgCurveReader *reader;
	int64		points;
	char	   *error;			/* the first problem found, or NULL */
} SgCurveParse;

/* Keeps the first problem found; the parse stops, or ignores the rest. */
static void
sg_cp_fail(SgCurveParse *st, const char *reason)
{
	if (st->error == NULL)
		st->error = pstrdup(reason);
}

static bool
sg_is_series_field(const char *f)
{
	return strcmp(f, "period") == 0 || strcmp(f, "startsAt") == 0 ||
		strcmp(f, "endsAt") == 0 || strcmp(f, "values") == 0;
}

char *
sg_json_run(char *body, size_t len, JsonSemAction *sem)
{
	JsonLexContext *lex = sg_make_json_lexer(body, len);
	JsonParseErrorType rc = pg_parse_json(lex, sem);
	char	   *complaint = rc != JSON_SUCCESS ? sg_json_errdetail(rc, lex) : NULL;

	sg_free_json_lexer(lex);
	return complaint;
}

bool
sg_json_too_deep(const char *body, size_t len, int max_depth)
{
	int			depth = 0;
	bool		in_string = false;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		c = body[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[')
		{
			if (++depth > max_depth)
				return true;
		}
		else if (c == '}' || c == ']')
			depth--;
	}
	return false;
}

/* The timestamp of step "i" of a series whose start and step are known. */
static bool
sg_step_time(SgCurveParse *st, SgSeries *s, int64 i, TimestampTz *result)
{
	if (s->step_days == 0)
	{
		int64		offset;

		if (pg_mul_s64_overflow(i, s->step_usec, &offset) ||
			pg_add_s64_overflow(s->start, offset, result) ||
			!IS_VALID_TIMESTAMP(*result))
		{
			sg_cp_fail(st, "A timestamp is out of range.");
			return false;
		}
		return true;
	}
	if (!st->reader->add_days(st->reader->tz_arg, s->start, i * s->step_days, result))
	{
		sg_cp_fail(st, "A timestamp is out of range.");
		return false;
	}
	return true;
}

static void
sg_emit(SgCurveParse *st, SgSeries *s, bool isnull, double v)
{
	TimestampTz ts;
	TimestampTz next;
	int64		step_s;

	if (!sg_step_time(st, s, s->index, &ts))
		return;
	if (s->step_days == 0)
		step_s = s->step_usec / USECS_PER_SEC;
	else
	{
		/* a Paris day lasts 23, 24 or 25 hours */
		if (!sg_step_time(st, s, s->index + 1, &next))
			return;
		step_s = (next - ts) / USECS_PER_SEC;
	}
	s->index++;
	st->points++;
	st->reader->point(st->reader->point_arg, s->prm, ts, step_s, isnull, v);
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
sg_series_free(SgSeries *s)
{
	if (s->held)
	{
		pfree(s->held);
		pfree(s->held_null);
	}
	memset(s, 0, sizeof(SgSeries));
}

static void
sg_series_begin(SgCurveParse *st, const char *prm)
{
	sg_series_free(&st->series);
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
			sg_cp_fail(st, "A series has values but no startsAt or period.");
		for (i = 0; i < s->nheld && st->error == NULL; i++)
			sg_emit(st, s, s->held_null[i], s->held[i]);
	}
	sg_series_free(s);
}

static SG_JSON_CB
sg_cp_object_start(void *state)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->error)
		SG_JSON_FAIL;
	st->depth++;
	if (st->in_values)
		sg_cp_fail(st, "A value is an object.");
	else if (st->depth == 2 && st->series_depth != 1)
	{
		/* {"<prm>": {...}}: the key names the series, and must be a PRM */
		if (strlen(st->top_key) != 14 ||
			strspn(st->top_key, "0123456789") != 14)
			sg_cp_fail(st, "A per-PRM key is not a 14-digit PRM.");
		else
		{
			/*
			 * Each series gets a PRM string of its own, kept to the end: a
			 * receiver may tell series apart by the pointer.
			 */
			if (st->nprms == st->prms_cap)
			{
				st->prms_cap = st->prms_cap ? st->prms_cap * 2 : 8;
				st->prms = st->prms ? repalloc(st->prms, st->prms_cap * sizeof(char *))
					: palloc(st->prms_cap * sizeof(char *));
			}
			st->prms[st->nprms] = pstrdup(st->top_key);
			st->series_depth = 2;
			sg_series_begin(st, st->prms[st->nprms++]);
		}
	}
	else if (st->depth > 2 || (st->depth == 2 && st->series_depth == 1))
		sg_cp_fail(st, "Unexpected nested object.");
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_object_end(void *state)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->error)
		SG_JSON_FAIL;
	if (st->depth == st->series_depth)
		sg_series_end(st);
	st->depth--;
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_field_start(void *state, char *fname, bool isnull)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->error)
	{
		pfree(fname);
		SG_JSON_FAIL;
	}
	if (st->depth == 1)
	{
		if (st->top_key)
			pfree(st->top_key);
		st->top_key = pstrdup(fname);
		if (sg_is_series_field(fname))
		{
			if (st->series_depth == 2)
				sg_cp_fail(st, "Mixed single-PRM and per-PRM shapes.");
			else if (st->series_depth == 0)
			{
				st->series_depth = 1;
				sg_series_begin(st, st->reader->default_prm);
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
	pfree(fname);
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_array_start(void *state)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->error)
		SG_JSON_FAIL;
	st->depth++;
	if (st->in_values)
		sg_cp_fail(st, "A value is an array.");
	else if (st->depth == st->series_depth + 1 && st->field != NULL &&
			 strcmp(st->field, "values") == 0)
		st->in_values = true;
	else if (st->depth <= st->series_depth + 1)
		sg_cp_fail(st, "Unexpected array.");
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_cp_array_end(void *state)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->error)
		SG_JSON_FAIL;
	if (st->in_values && st->depth == st->series_depth + 1)
		st->in_values = false;
	st->depth--;
	SG_JSON_RETURN;
}

/* A value of "values": a number, a numeric string, or null. */
static void
sg_cp_value(SgCurveParse *st, char *token, JsonTokenType tokentype)
{
	SgSeries   *s = &st->series;
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
		{
			sg_cp_fail(st, "A value is not a number.");
			return;
		}
	}
	else
	{
		sg_cp_fail(st, "A value is not a number.");
		return;
	}

	if (s->have_start && s->have_step && s->nheld == 0)
		sg_emit(st, s, isnull, v);
	else
		sg_hold(s, isnull, v);
}

/* A scalar field of the series object: period and startsAt are read. */
static void
sg_cp_series_field(SgCurveParse *st, char *token, JsonTokenType tokentype)
{
	SgSeries   *s = &st->series;
	SgIsoDateTime dt;

	/* endsAt and unknown fields are not needed */
	if (st->field == NULL)
		return;
	if (strcmp(st->field, "values") == 0)
	{
		if (tokentype != JSON_TOKEN_NULL)
			sg_cp_fail(st, "\"values\" is not an array.");
		return;
	}
	if (tokentype != JSON_TOKEN_STRING)
		sg_cp_fail(st, "period and startsAt must be strings.");

	/*
	 * A key given twice would re-date the values after it, even moving time
	 * backwards within the series: refused (found by fuzzing).
	 */
	else if (strcmp(st->field, "period") == 0 ? s->have_step : s->have_start)
	{
		char	   *msg = psprintf("A series has more than one %s.", st->field);

		sg_cp_fail(st, msg);
		pfree(msg);
	}
	else if (strcmp(st->field, "period") == 0)
	{
		if (!sg_iso_parse_period(token, &s->step_usec, &s->step_days))
		{
			char	   *msg = psprintf("Unknown period \"%s\".", token);

			sg_cp_fail(st, msg);
			pfree(msg);
			return;
		}
		s->have_step = true;
	}
	else
	{
		/* an ISO 8601 time with an offset (none means UTC) */
		if (!sg_iso_scan_datetime(token, &dt) || !sg_iso_datetime_utc(&dt, &s->start))
		{
			sg_cp_fail(st, "startsAt is not an ISO 8601 date-time.");
			return;
		}
		s->have_start = true;
	}
}

static SG_JSON_CB
sg_cp_scalar(void *state, char *token, JsonTokenType tokentype)
{
	SgCurveParse *st = (SgCurveParse *) state;

	if (st->error == NULL)
	{
		if (st->in_values && st->depth == st->series_depth + 1)
			sg_cp_value(st, token, tokentype);
		else if (st->depth == st->series_depth && st->depth > 0)
			sg_cp_series_field(st, token, tokentype);
		else if (st->depth == 0 || (st->depth == 1 && st->series_depth == 2))
			sg_cp_fail(st, "The body is not a load-curve object.");
		/* (an unknown top-level field before the series fields is ignored) */
	}
	if (token)
		pfree(token);
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

int64
sg_curve_parse(char *body, size_t len, const SgCurveReader *reader, char **error)
{
	JsonSemAction sem;
	SgCurveParse st;
	char	   *complaint;

	*error = NULL;
	if (sg_json_too_deep(body, len, SG_CURVE_MAX_DEPTH))
	{
		*error = pstrdup("The body nests deeper than a load curve.");
		return -1;
	}

	memset(&st, 0, sizeof(st));
	st.reader = reader;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = sg_cp_object_start;
	sem.object_end = sg_cp_object_end;
	sem.object_field_start = sg_cp_field_start;
	sem.array_start = sg_cp_array_start;
	sem.array_end = sg_cp_array_end;
	sem.scalar = sg_cp_scalar;

	complaint = sg_json_run(body, len, &sem);
	if (st.error == NULL)
		st.error = complaint;
	else if (complaint != NULL)
		pfree(complaint);
	sg_series_free(&st.series);
	if (st.top_key)
		pfree(st.top_key);
	while (st.nprms > 0)
		pfree(st.prms[--st.nprms]);
	if (st.prms)
		pfree(st.prms);

	if (st.error != NULL)
	{
		*error = st.error;
		return -1;
	}
	return st.points;
}
