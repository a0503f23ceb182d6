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

int64
sg_read_loadcurve(char *body, size_t len, const char *default_prm,
				  SgCurvePointFn fn, void *arg, const char *what)
{
	SgCurveReader reader;
	pg_tz	   *paris = pg_tzset(SG_CURVE_TZ);
	char	   *error;
	int64		n;

	if (paris == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("time zone \"%s\" is not available", SG_CURVE_TZ)));
	reader.default_prm = default_prm;
	reader.point = fn;
	reader.point_arg = arg;
	reader.add_days = sg_paris_add_days;
	reader.days_arg = paris;
	n = sg_curve_parse(body, len, &reader, &error);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("malformed response from Switchgrid for %s", what),
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
	char	   *id = sg_uuid_arg(fcinfo, 0, "request_id");
	char	   *query;
	char	   *what;
	char	   *prm;
	SgHttpResponse *resp;
	SgCurveSink sink;

	if (PG_ARGISNULL(1))
		query = pstrdup("format=json");
	else
		query = psprintf("format=json&period=%s",
						 sg_loadcurve_period_param(sg_text_arg_capped(fcinfo, 1, "period",
																	  SG_MAX_WORD_CHARS)));

	InitMaterializedSRF(fcinfo, 0);

	/* a one-PRM payload does not name its PRM: the recorded request does */
	prm = sg_request_prm(id);

	what = psprintf("load curve of request %s", id);
	resp = sg_api_call(SG_HTTP_GET, sg_request_data_path(id), query,
					   NULL, SG_HTTP_ALLOW_404 | SG_HTTP_DATA, what);
	if (resp->status == 404)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no load-curve data for request %s", id),
				 errdetail("Switchgrid has no load-curve data for this request: it is not finished, it failed, or it is not a load curve."),
				 errhint("Check that the request is a LOADCURVE request and that switchgrid_order_status() shows it as SUCCESS.")));

	memset(&sink, 0, sizeof(sink));
	sink.store = rsinfo->setResult;
	sink.desc = rsinfo->setDesc;
	(void) sg_read_loadcurve(resp->body, resp->len, prm, sg_curve_to_tuplestore,
							 &sink, what);
	pfree(resp->body);
	return (Datum) 0;
}
