/*-------------------------------------------------------------------------
 * result.c
 *	  A finished request's data: where it is downloaded from, and how it is
 *	  read into the tables.
 *
 * The worker (in batches) and switchgrid_wait() (one by one) download
 * results; both ask here where from, and hand the body back here to be read.
 * The data path runs one way: the type's entry in the request table
 * (request.c), HTTP (http.c), the parser the entry names (curveparse.c for
 * LOADCURVE or r63parse.c for R63, via loadcurve.c; or jsonb and the
 * dataset's SQL reader), the tables (store.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "http.h"
#include "json_util.h"
#include "loadcurve.h"
#include "request.h"
#include "result.h"
#include "store.h"

#define SG_RESULT_QUERY "format=json"

/* Whether the data comes from the API's own endpoint rather than the dataUrl. */
static bool
sg_result_from_api(const char *type, const char *data_url)
{
	const SgRequestType *rt = sg_request_type(type);

	return data_url == NULL || (rt != NULL && rt->source == SG_DATA_FROM_API);
}

char *
sg_result_url(const char *request_id, const char *type, const char *data_url,
			  const char **path, bool *send_token)
{
	if (sg_result_from_api(type, data_url))
	{
		*path = sg_request_data_path(request_id);
		*send_token = true;
		return sg_api_url(*path, SG_RESULT_QUERY);
	}
	*path = "(data URL)";
	*send_token = sg_url_is_api(data_url);
	return pstrdup(data_url);
}

SgHttpResponse *
sg_fetch_result(const char *request_id, const char *type, const char *data_url,
				const char *what)
{
	if (sg_result_from_api(type, data_url))
		return sg_api_call(SG_HTTP_GET, sg_request_data_path(request_id),
						   SG_RESULT_QUERY, NULL, SG_HTTP_DATA, what);
	return sg_fetch_url(data_url, what);
}

/* A parsed load curve, as the arrays switchgrid.store_loadcurve() takes. */
typedef struct SgCurveArrays
{
	Datum	   *prm;
	Datum	   *ts;
	Datum	   *step;
	Datum	   *power;
	bool	   *power_null;
	int64		n;
	int64		cap;
	const char *last_prm;
	Datum		prm_datum;
} SgCurveArrays;

static void
sg_curve_to_arrays(void *arg, const char *prm, TimestampTz ts, int64 step_s,
				   bool isnull, double power_w)
{
	SgCurveArrays *a = (SgCurveArrays *) arg;

	if (a->n == a->cap)
	{
		a->cap *= 2;
		a->prm = repalloc_huge(a->prm, a->cap * sizeof(Datum));
		a->ts = repalloc_huge(a->ts, a->cap * sizeof(Datum));
		a->step = repalloc_huge(a->step, a->cap * sizeof(Datum));
		a->power = repalloc_huge(a->power, a->cap * sizeof(Datum));
		a->power_null = repalloc_huge(a->power_null, a->cap * sizeof(bool));
	}
	if (prm != a->last_prm || a->n == 0)
	{
		if (prm == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("load curve names no PRM")));
		a->prm_datum = CStringGetTextDatum(prm);
		a->last_prm = prm;
	}
	/* a step is at most a day in R63; a LOADCURVE's P366D still fits */
	if (step_s <= 0 || step_s > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("load curve has a step of %lld seconds", (long long) step_s)));
	a->prm[a->n] = a->prm_datum;
	a->ts[a->n] = TimestampTzGetDatum(ts);
	a->step[a->n] = Int32GetDatum((int32) step_s);
	a->power[a->n] = Float8GetDatum(isnull ? 0 : power_w);
	a->power_null[a->n] = isnull;
	a->n++;
}

void
sg_store_result(const char *request_id, const char *type, const char *prm,
				SgHttpResponse *resp)
{
	const SgRequestType *rt = sg_request_type(type);
	const char *what = psprintf("data of request %s", request_id);

	if (rt != NULL && sg_parser_is_curve(rt->parser))
	{
		SgCurveArrays a;

		memset(&a, 0, sizeof(a));
		a.cap = 4096;
		a.prm = palloc(a.cap * sizeof(Datum));
		a.ts = palloc(a.cap * sizeof(Datum));
		a.step = palloc(a.cap * sizeof(Datum));
		a.power = palloc(a.cap * sizeof(Datum));
		a.power_null = palloc(a.cap * sizeof(bool));
		/* a one-PRM curve does not name its meter: an Order by consent's may be the consent's */
		if (prm == NULL)
			prm = sg_request_consent_prm(request_id);
		(void) sg_read_loadcurve(resp->body, resp->len, rt->parser, prm,
								 sg_curve_to_arrays, &a, what);
		(void) sg_store_loadcurve(request_id, a.n, a.prm, a.ts, a.step, a.power,
								  a.power_null);
	}
	else
		sg_store_data(request_id, sg_response_to_jsonb(resp, what),
					  rt != NULL ? sg_dataset_name(rt->parser) : NULL);
}
