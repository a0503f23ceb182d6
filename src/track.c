/*-------------------------------------------------------------------------
 * track.c
 *	  Following Orders from SQL: switchgrid_wait() and switchgrid_webhook().
 *
 * switchgrid_wait() leaves the work to the background worker when one is
 * active in this database and can see the Order; otherwise (no worker, an
 * Order placed by the waiting transaction itself, or a snapshot that would
 * never show the worker's progress) it polls and downloads by itself, inside
 * the caller's transaction.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "guc.h"
#include "http.h"
#include "json_util.h"
#include "result.h"
#include "store.h"
#include "worker.h"

#define SG_WAIT_PROGRESS_S 10	/* seconds between progress NOTICEs */

/* switchgrid.order_progress() of an Order, or NULL if it is not recorded. */
static Jsonb *
sg_order_progress(const char *order_id)
{
	Oid			types[1] = {UUIDOID};
	Datum		values[1];
	Datum		result;
	bool		isnull;

	values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(order_id));
	(void) sg_spi_as_owner("SELECT switchgrid.order_progress($1)", 1, types, values,
						   NULL, &result, &isnull);
	return isnull ? NULL : DatumGetJsonbP(result);
}

static int64
sg_progress_int(Jsonb *p, const char *key)
{
	JsonbValue *v = sg_jsonb_get(&p->root, key);

	if (v == NULL || v->type != jbvNumeric)
		return 0;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
}

static bool
sg_progress_flag(Jsonb *p, const char *key)
{
	JsonbValue *v = sg_jsonb_get(&p->root, key);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

static bool
sg_progress_finished(Jsonb *p)
{
	return sg_progress_flag(p, "finished");
}

/* Whether the current transaction wrote the Order's row. */
static bool
sg_progress_is_mine(Jsonb *p)
{
	char	   *xmin = sg_jsonb_get_string(&p->root, "xmin");

	return xmin != NULL &&
		TransactionIdIsCurrentTransactionId((TransactionId) strtoul(xmin, NULL, 10));
}

/* One step of waiting without the worker: poll the Order, fetch its results. */
static void
sg_wait_step_alone(const char *order_id)
{
	char	   *what = psprintf("Order %s", order_id);
	SgHttpResponse *resp;
	Oid			types[1] = {UUIDOID};
	Datum		values[1];
	Datum		result;
	bool		isnull;
	Jsonb	   *due;
	int			i,
				n;

	resp = sg_api_call(SG_HTTP_GET, psprintf("/order/%s", order_id), NULL, NULL, 0, what);
	sg_store_order(sg_body_to_jsonb(resp->body, resp->len, what), NULL, NULL, 1.0, true);

	values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(order_id));
	(void) sg_spi_as_owner("SELECT coalesce(jsonb_agg(jsonb_build_object("
						   "'id', request_id, 'type', type, 'url', data_url,"
						   " 'prm', " SG_SQL_SINGLE_PRM ")), '[]')"
						   " FROM switchgrid.requests"
						   " WHERE order_id = $1 AND status = 'SUCCESS' AND fetched_at IS NULL",
						   1, types, values, NULL, &result, &isnull);
	due = DatumGetJsonbP(result);
	n = JsonContainerSize(&due->root);
	for (i = 0; i < n; i++)
	{
		JsonbValue *r = getIthJsonbValueFromContainer(&due->root, i);
		char	   *id = sg_jsonb_get_string(r->val.binary.data, "id");
		char	   *type = sg_jsonb_get_string(r->val.binary.data, "type");
		char	   *url = sg_jsonb_get_string(r->val.binary.data, "url");
		char	   *prm = sg_jsonb_get_string(r->val.binary.data, "prm");
		char	   *rwhat = psprintf("data of request %s", id);

		resp = sg_fetch_result(id, type, url, rwhat);
		sg_store_result(id, type, prm, resp);
	}
}

PG_FUNCTION_INFO_V1(switchgrid_wait);

/*
 * switchgrid_wait(order_id uuid, timeout interval DEFAULT '15 minutes')
 *	 RETURNS jsonb
 *
 * Blocks until the Order is terminal and every result is stored; returns the
 * Order as last seen.
 */
Datum
switchgrid_wait(PG_FUNCTION_ARGS)
{
	char	   *order_id;
	Interval   *timeout;
	int64		timeout_us;
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz last_notice = start;
	bool		handed_over = false;
	bool		alone = false;	/* the worker could not take the Order */
	long		alone_sleep_ms = 250;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("order_id must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null")));
	order_id = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(0)));
	timeout = PG_GETARG_INTERVAL_P(1);
	{
		/* in double, then capped at a year: no overflow on huge intervals */
		double		us = (double) timeout->time +
			(double) timeout->day * USECS_PER_DAY +
			(double) timeout->month * DAYS_PER_MONTH * USECS_PER_DAY;

		timeout_us = (int64) Min(us, 366.0 * USECS_PER_DAY);
		if (us <= 0)
			timeout_us = 0;
	}
	if (timeout_us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must be positive")));

	for (;;)
	{
		Jsonb	   *p = sg_order_progress(order_id);
		bool		by_worker;
		TimestampTz now;
		long		sleep_ms;

		/*
		 * The worker can do the work if it runs here, downloads results, can
		 * see the Order, and our snapshot will show its progress.
		 */
		by_worker = !alone && sg_worker_is_active() && sg_auto_fetch &&
			!IsolationUsesXactSnapshot() &&
			(p == NULL || (!sg_progress_is_mine(p) && sg_progress_flag(p, "followed")));

		if (p != NULL && sg_progress_finished(p))
			PG_RETURN_JSONB_P(sg_jsonb_get_jsonb(&p->root, "order"));

		if (by_worker)
		{
			if (p == NULL && !handed_over)
			{
				/* an id Switchgrid does not know fails here, with 404 */
				(void) sg_api_call(SG_HTTP_GET, psprintf("/order/%s", order_id), NULL, NULL,
								   0, psprintf("Order %s", order_id));
				/* the worker's queue for this is small: if full, do it here */
				handed_over = sg_worker_follow(order_id);
				alone = !handed_over;
			}
			sleep_ms = 100;
		}
		else
		{
			if (RecoveryInProgress() || XactReadOnly)
				ereport(ERROR,
						(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
						 errmsg("switchgrid_wait() cannot store results in a read-only transaction"),
						 errhint("Run it in a read-write transaction, or let the background worker do the work.")));
			sg_wait_step_alone(order_id);
			p = sg_order_progress(order_id);
			if (p != NULL && sg_progress_finished(p))
				PG_RETURN_JSONB_P(sg_jsonb_get_jsonb(&p->root, "order"));
			sleep_ms = alone_sleep_ms;
			alone_sleep_ms = Min(alone_sleep_ms * 2, 5000);
		}

		now = GetCurrentTimestamp();
		if (now - start >= timeout_us)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("order %s is not finished after %s", order_id,
							DatumGetCString(DirectFunctionCall1(interval_out,
																IntervalPGetDatum(timeout)))),
					 p ? errdetail("Its status is %s; %lld of %lld requests are done.",
								   sg_jsonb_get_string(&p->root, "status"),
								   (long long) sg_progress_int(p, "done"),
								   (long long) sg_progress_int(p, "requests")) : 0,
					 errhint("Call switchgrid_wait() again later: the order goes on.")));
		if (now - last_notice >= SG_WAIT_PROGRESS_S * USECS_PER_SEC)
		{
			last_notice = now;
			if (p != NULL)
				ereport(NOTICE,
						(errmsg("order %s is %s: %lld of %lld requests done",
								order_id, sg_jsonb_get_string(&p->root, "status"),
								(long long) sg_progress_int(p, "done"),
								(long long) sg_progress_int(p, "requests"))));
			else
				ereport(NOTICE, (errmsg("waiting for order %s", order_id)));
		}
		sleep_ms = Min(sleep_ms, (long) ((start + timeout_us - now) / 1000) + 1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static Datum
sg_optional_uuid(JsonbContainer *event, const char *key, bool required, bool *isnull)
{
	char	   *s = sg_jsonb_get_string(event, key);

	*isnull = (s == NULL);
	if (s == NULL)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook event has no \"%s\"", key)));
		return (Datum) 0;
	}
	return DirectFunctionCall1(uuid_in, CStringGetDatum(s));
}

PG_FUNCTION_INFO_V1(switchgrid_webhook);

/*
 * switchgrid_webhook(payload jsonb) RETURNS void
 *
 * Webhooks are not signed, so an event is only a hint, and nothing in it is
 * taken as data.  This only records the event; once the transaction has
 * committed, the worker takes it (switchgrid.take_webhook_events): it polls
 * the known Ask or Order named, at most once a second, and looks up an
 * unknown Order within its budget.  So a rolled-back event costs nothing,
 * and a flood of forged ones costs at most the budget's look-ups.
 */
Datum
switchgrid_webhook(PG_FUNCTION_ARGS)
{
	Jsonb	   *payload;
	JsonbValue *ev;
	JsonbContainer *event;
	char	   *tag;
	char	   *created;
	bool		is_ask;
	Oid			types[7] = {JSONBOID, TEXTOID, TIMESTAMPTZOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	Datum		unused;
	char	   *rtype;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payload must not be null")));
	payload = PG_GETARG_JSONB_P(0);
	ev = JB_ROOT_IS_OBJECT(payload) && !JB_ROOT_IS_SCALAR(payload)
		? sg_jsonb_get(&payload->root, "event") : NULL;
	if (ev == NULL || ev->type != jbvBinary || !JsonContainerIsObject(ev->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook payload has no \"event\" object")));
	event = ev->val.binary.data;
	tag = sg_jsonb_get_string(event, "_tag");
	if (tag == NULL ||
		(strcmp(tag, "ask.accepted") != 0 && strcmp(tag, "order.request_success") != 0 &&
		 strcmp(tag, "order.request_failed") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown webhook event \"%s\"", tag ? tag : "(none)"),
				 errdetail("Known events: ask.accepted, order.request_success, order.request_failed.")));
	is_ask = strcmp(tag, "ask.accepted") == 0;

	values[0] = JsonbPGetDatum(payload);
	values[1] = CStringGetTextDatum(tag);
	created = sg_jsonb_get_string(event, "createdAt");
	if (created)
		values[2] = TimestampTzGetDatum(DatumGetTimestampTz(
			DirectFunctionCall3(timestamptz_in, CStringGetDatum(created),
								ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1))));
	else
		nulls[2] = 'n';
	values[3] = sg_optional_uuid(event, "askId", is_ask, &isnull);
	nulls[3] = isnull ? 'n' : ' ';
	values[4] = sg_optional_uuid(event, "orderId", !is_ask, &isnull);
	nulls[4] = isnull || is_ask ? 'n' : ' ';
	values[5] = sg_optional_uuid(event, "requestId", false, &isnull);
	nulls[5] = isnull || is_ask ? 'n' : ' ';
	rtype = sg_jsonb_get_string(event, "requestType");
	if (rtype && !is_ask)
		values[6] = CStringGetTextDatum(rtype);
	else
		nulls[6] = 'n';

	/* asking for a result: a read-only transaction fails rather than skip it */
	(void) sg_spi_as_owner("SELECT switchgrid.record_webhook($1, $2, $3, $4, $5, $6, $7)",
						   7, types, values, nulls, &unused, &isnull);
	/* the worker takes the event once this transaction commits, if it does */
	sg_worker_wake_at_commit();

	PG_RETURN_VOID();
}
