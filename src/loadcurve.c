/*-------------------------------------------------------------------------
 * loadcurve.c
 *	  Load curves inside the server: the SQL function switchgrid_loadcurve(),
 *	  and the server's side of the parser (time zone, errors).
 *
 * The parsing itself is curveparse.c, which knows nothing of the server.
 * switchgrid_loadcurve() reads one way: arguments checked, the request's PRM
 * looked up, one HTTP call, the parser, rows straight into the tuplestore
 * (a 24-month curve at PT10M is over 100,000 rows; nothing is stored).
 *
 * A P1D step is a calendar day in Europe/Paris, so a DST day lasts 23 or 25
 * hours: the server's time-zone database says which.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "funcapi.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "http.h"
#include "input.h"
#include "iso8601.h"
#include "loadcurve.h"
#include "r63parse.h"
#include "request.h"
#include "store.h"

#define SG_CURVE_TZ "Europe/Paris"

/* SgCurveAddDaysFn with the server's time-zone database; "arg" is a pg_tz. */
static bool
sg_paris_add_days(void *arg, TimestampTz ts, int64 days, TimestampTz *result)
{
	pg_tz	   *paris = (pg_tz *) arg;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	/* move along the Paris calendar, keep the wall-clock time */
	if (days < -INT_MAX / 2 || days > INT_MAX / 2 ||
		timestamp2tm(ts, &tz, &tm, &fsec, NULL, paris) != 0)
		return false;
	j2date(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) + (int) days,
		   &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tm.tm_isdst = -1;
	tz = DetermineTimeZoneOffset(&tm, paris);
	return tm2timestamp(&tm, fsec, &tz, result) == 0 && IS_VALID_TIMESTAMP(*result);
}

/* SgCurveUtcOffsetFn with the server's time-zone database; "arg" is a pg_tz. */
static bool
sg_paris_utc_offset(void *arg, TimestampTz ts, int *offset_s)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (timestamp2tm(ts, &tz, &tm, &fsec, NULL, (pg_tz *) arg) != 0)
		return false;
	*offset_s = -tz;			/* PostgreSQL counts seconds west of UTC */
	return true;
}

int64
sg_read_loadcurve(char *body, size_t len, SgDataParser parser, const char *default_prm,
				  SgCurvePointFn fn, void *arg, const char *what)
{
	SgCurveReader reader;
	pg_tz	   *paris = pg_tzset(SG_CURVE_TZ);
	char	   *error;
	int64		n;

	Assert(sg_parser_is_curve(parser));
	if (paris == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("time zone \"%s\" is not available", SG_CURVE_TZ)));
	reader.default_prm = default_prm;
	reader.point = fn;
	reader.point_arg = arg;
	reader.add_days = sg_paris_add_days;
	reader.utc_offset = sg_paris_utc_offset;
	reader.tz_arg = paris;
	if (parser == SG_PARSE_R63)
		n = sg_r63_parse(body, len, &reader, &error);
	else
		n = sg_curve_parse(body, len, &reader, &error);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("malformed %s from Switchgrid for %s",
						parser == SG_PARSE_R63 ? "R63 file" : "response", what),
				 errdetail_internal("%s", error)));
	return n;
}

/* The API's query value for a user's period; raises 22023 if it has none. */
static const char *
sg_loadcurve_period_param(const char *period)
{
	const char *param = sg_iso_period_param(period);

	if (param == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid load-curve period \"%s\"", period),
				 errdetail("Allowed: 5min, 10min, 15min, 30min, 1h, 1d, or the same as ISO 8601 (PT10M, PT600S, PT1H, P1D).")));
	return param;
}

/* The columns of switchgrid_loadcurve(). */
#define SG_CURVE_NCOLS 7

/*
 * Collects the rows of switchgrid_loadcurve() into its tuplestore: a row a
 * step, or, with "paris" set, a row a Paris day built from the steps.
 */
typedef struct SgCurveSink
{
	Tuplestorestate *store;
	TupleDesc	desc;
	const char *last_prm;
	Datum		prm_datum;
	/* by day: the day being summed */
	pg_tz	   *paris;
	bool		in_day;
	TimestampTz day_start;
	TimestampTz day_end;
	double		held_wh;		/* energy of the steps held */
	int64		held_s;			/* their length */
	int64		held;			/* steps with a value */
	int64		points;			/* steps given, with a value or NULL */
	int64		given_s;		/* their length */
	int64		finest_s;		/* the shortest step of the day */
} SgCurveSink;

static void
sg_curve_put(SgCurveSink *sink, TimestampTz ts, int64 step_s, bool isnull,
			 double power_w, double wh, int64 steps, int64 day_steps, bool daily)
{
	Datum		values[SG_CURVE_NCOLS];
	bool		nulls[SG_CURVE_NCOLS];

	/*
	 * All the columns of this version; the 0.1.0 declaration, still in force
	 * until ALTER EXTENSION switchgrid UPDATE, takes the first three.
	 */
	memset(nulls, 0, sizeof(nulls));
	Assert(sink->desc->natts <= SG_CURVE_NCOLS);
	values[0] = sink->prm_datum;
	nulls[0] = (sink->last_prm == NULL);
	values[1] = TimestampTzGetDatum(ts);
	values[2] = Float8GetDatum(power_w);
	nulls[2] = isnull;
	values[3] = Int32GetDatum((int32) Min(step_s, PG_INT32_MAX));
	values[4] = Float8GetDatum(wh);
	nulls[4] = isnull;
	values[5] = Int32GetDatum((int32) steps);
	nulls[5] = !daily;
	values[6] = Int32GetDatum((int32) day_steps);
	nulls[6] = !daily;
	tuplestore_putvalues(sink->store, sink->desc, values, nulls);
}

/* The day summed so far, as a row: its steps held out of the steps the day has. */
static void
sg_curve_day_flush(SgCurveSink *sink)
{
	int64		day_s = (sink->day_end - sink->day_start) / USECS_PER_SEC;
	int64		missing_s = Max(day_s - sink->given_s, 0);
	int64		day_steps;

	if (!sink->in_day)
		return;
	/* time no step covers counts at the day's finest step */
	day_steps = sink->points + (missing_s + sink->finest_s / 2) / sink->finest_s;
	sg_curve_put(sink, sink->day_start, day_s, sink->held == 0,
				 sink->held_s > 0 ? sink->held_wh * 3600.0 / sink->held_s : 0,
				 sink->held_wh, sink->held, day_steps, true);
	sink->in_day = false;
}

static void
sg_curve_set_prm(SgCurveSink *sink, const char *prm)
{
	sink->prm_datum = prm ? CStringGetTextDatum(prm) : (Datum) 0;
	sink->last_prm = prm;
}

static void
sg_curve_to_tuplestore(void *arg, const char *prm, TimestampTz ts, int64 step_s,
					   bool isnull, double power_w)
{
	SgCurveSink *sink = (SgCurveSink *) arg;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (sink->paris == NULL)
	{
		if (prm != sink->last_prm)
			sg_curve_set_prm(sink, prm);
		sg_curve_put(sink, ts, step_s, isnull, power_w,
					 isnull ? 0 : power_w * step_s / 3600.0, 0, 0, false);
		return;
	}

	/* by day: a step counts in the Paris day it starts in */
	if (!sink->in_day || prm != sink->last_prm || ts < sink->day_start || ts >= sink->day_end)
	{
		sg_curve_day_flush(sink);
		if (prm != sink->last_prm)
			sg_curve_set_prm(sink, prm);
		if (timestamp2tm(ts, &tz, &tm, &fsec, NULL, sink->paris) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("timestamp out of range")));
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_isdst = -1;
		tz = DetermineTimeZoneOffset(&tm, sink->paris);
		if (tm2timestamp(&tm, 0, &tz, &sink->day_start) != 0 ||
			!sg_paris_add_days(sink->paris, sink->day_start, 1, &sink->day_end))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("timestamp out of range")));
		sink->in_day = true;
		sink->held_wh = 0;
		sink->held_s = sink->held = sink->points = sink->given_s = 0;
		sink->finest_s = step_s;
	}
	sink->points++;
	sink->given_s += step_s;
	sink->finest_s = Max(Min(sink->finest_s, step_s), 1);
	if (!isnull)
	{
		sink->held++;
		sink->held_s += step_s;
		sink->held_wh += power_w * step_s / 3600.0;
	}
}

PG_FUNCTION_INFO_V1(switchgrid_loadcurve);

/*
 * switchgrid_loadcurve(request_id uuid, period text DEFAULT NULL)
 *	 RETURNS TABLE(prm text, ts timestamptz, power_w double precision,
 *				   step_s integer, wh double precision, steps integer,
 *				   day_steps integer)
 *
 * A LOADCURVE request is read from the API, resampled there for a sub-day
 * period.  An R63 or R63_SYNC request recorded here is read from its
 * dataUrl, at its own steps.  A day ("1d") is summed here from the steps,
 * for both, so that it can say how many steps it holds.
 */
Datum
switchgrid_loadcurve(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *id = sg_uuid_arg(fcinfo, 0, "request_id");
	const char *param = NULL;
	bool		daily = false;
	char	   *query;
	char	   *what;
	char	   *prm;
	char	   *type;
	char	   *data_url;
	const SgRequestType *rt;
	SgDataParser parser = SG_PARSE_LOADCURVE;
	SgHttpResponse *resp;
	SgCurveSink sink;

	if (!PG_ARGISNULL(1))
	{
		param = sg_loadcurve_period_param(sg_text_arg_capped(fcinfo, 1, "period",
															 SG_MAX_WORD_CHARS));
		daily = strcmp(param, "1d") == 0;
	}

	InitMaterializedSRF(fcinfo, 0);

	/* a one-PRM payload does not name its PRM: the recorded request does */
	sg_request_lookup(id, &prm, &type, &data_url);
	rt = sg_request_type(type);
	what = psprintf("load curve of request %s", id);

	if (rt != NULL && rt->parser == SG_PARSE_R63)
	{
		parser = SG_PARSE_R63;
		if (param != NULL && !daily)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot resample the %s load curve of request %s to %s", type, id, param),
					 errdetail("An %s file is read at the meter's own steps.", type),
					 errhint("Pass no period, or 1d for days.")));
		if (data_url == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("no load-curve data for request %s", id),
					 errdetail("Its dataUrl is not recorded: it is not finished, or it failed."),
					 errhint("Wait until switchgrid_order_status() shows it as SUCCESS.")));
		resp = sg_fetch_url(data_url, what);
	}
	else
	{
		/* a day is summed here from the steps: the API's day would not say how many */
		if (param != NULL && !daily)
			query = psprintf("format=json&period=%s", param);
		else
			query = pstrdup("format=json");
		resp = sg_api_call(SG_HTTP_GET, sg_request_data_path(id), query,
						   NULL, SG_HTTP_ALLOW_404 | SG_HTTP_DATA, what);
		if (resp->status == 404)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("no load-curve data for request %s", id),
					 errdetail("Switchgrid has no load-curve data for this request: it is not finished, it failed, or it is not a load curve."),
					 errhint("Check that the request is a LOADCURVE, R63 or R63_SYNC request and that switchgrid_order_status() shows it as SUCCESS.")));
	}

	memset(&sink, 0, sizeof(sink));
	sink.store = rsinfo->setResult;
	sink.desc = rsinfo->setDesc;
	if (daily)
	{
		sink.paris = pg_tzset(SG_CURVE_TZ);
		if (sink.paris == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("time zone \"%s\" is not available", SG_CURVE_TZ)));
	}
	(void) sg_read_loadcurve(resp->body, resp->len, parser, prm, sg_curve_to_tuplestore,
							 &sink, what);
	sg_curve_day_flush(&sink);
	pfree(resp->body);
	return (Datum) 0;
}
