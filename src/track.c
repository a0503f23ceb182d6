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

#include "compat.h"
#include "guc.h"
#include "http.h"
#include "input.h"
#include "json_util.h"
#include "request.h"
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

	values[0] = sg_uuid_in(order_id);
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
	(void) sg_store_order(sg_response_for_id(resp, what, order_id), NULL, NULL, 1.0, true);

	values[0] = sg_uuid_in(order_id);
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

	order_id = sg_uuid_arg(fcinfo, 0, "order_id");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timeout must not be null")));
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

/* ----------------------------------------------------------------
 * Webhooks
 * ----------------------------------------------------------------
 */

/* The webhook events Switchgrid sends, and what each must name. */
typedef struct SgWebhookTag
{
	const char *tag;
	bool		is_ask;			/* names an Ask ("askId"), else an Order ("orderId") */
} SgWebhookTag;

static const SgWebhookTag sg_webhook_tags[] = {
	{"ask.accepted", true},
	{"order.request_success", false},
	{"order.request_failed", false},
};

/* What switchgrid.record_webhook() keeps of a delivery besides its payload. */
typedef struct SgWebhookEvent
{
	const SgWebhookTag *tag;
	const char *created;		/* createdAt, or NULL */
	const char *ask_id;			/* required for an Ask's event, else NULL if absent */
	const char *order_id;		/* an Order's event only */
	const char *request_id;		/* NULL if absent */
	const char *request_type;	/* NULL if absent */
} SgWebhookEvent;

static const SgWebhookTag *
sg_webhook_tag(const char *tag)
{
	int			i;

	for (i = 0; i < (int) lengthof(sg_webhook_tags); i++)
		if (strcmp(tag, sg_webhook_tags[i].tag) == 0)
			return &sg_webhook_tags[i];
	return NULL;
}

/* "Known events: a, b, c." for the detail of an unknown one. */
static char *
sg_webhook_known_tags(void)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "Known events: ");
	for (i = 0; i < (int) lengthof(sg_webhook_tags); i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", sg_webhook_tags[i].tag);
	appendStringInfoChar(&buf, '.');
	return buf.data;
}

/*
 * A uuid field of the event as text, checked (22P02, quoting only its
 * start), or NULL if it is absent; a required one that is absent raises
 * 22023.
 */
static const char *
sg_webhook_uuid(JsonbContainer *event, const char *key, bool required)
{
	char	   *s = sg_jsonb_get_string(event, key);

	if (s == NULL)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook event has no \"%s\"", key)));
		return NULL;
	}
	return sg_uuid_out(sg_uuid_in(s));
}

/*
 * Checks the envelope of a delivery and reads what is kept of it: an
 * "event" object, a known "_tag", the id it must name, and the optional
 * fields.  A function of the jsonb alone (no SQL, no HTTP); a bad value
 * raises 22023 or 22P02, quoting only its start.
 */
static void
sg_webhook_envelope(Jsonb *payload, SgWebhookEvent *ev)
{
	JsonbValue *v;
	JsonbContainer *event;
	char	   *tag;

	memset(ev, 0, sizeof(*ev));

	v = JB_ROOT_IS_OBJECT(payload) && !JB_ROOT_IS_SCALAR(payload)
		? sg_jsonb_get(&payload->root, "event") : NULL;
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook payload has no \"event\" object")));
	event = v->val.binary.data;

	tag = sg_jsonb_get_string(event, "_tag");
	ev->tag = tag ? sg_webhook_tag(tag) : NULL;
	if (ev->tag == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 tag ? errmsg("unknown webhook event \"%s\"", sg_quote_start(tag))
				 : errmsg("webhook event has no \"_tag\""),
				 errdetail_internal("%s", sg_webhook_known_tags())));

	ev->ask_id = sg_webhook_uuid(event, "askId", ev->tag->is_ask);
	if (!ev->tag->is_ask)
	{
		ev->order_id = sg_webhook_uuid(event, "orderId", true);
		ev->request_id = sg_webhook_uuid(event, "requestId", false);
		ev->request_type = sg_jsonb_get_string(event, "requestType");
		if (ev->request_type != NULL && strlen(ev->request_type) > SG_MAX_WORD_CHARS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid webhook request type \"%s\"",
							sg_quote_start(ev->request_type))));
	}
	ev->created = sg_jsonb_get_string(event, "createdAt");
	if (ev->created != NULL && strlen(ev->created) > SG_MAX_WORD_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("invalid input syntax for type %s: \"%s\"",
						"timestamp with time zone", sg_quote_start(ev->created))));
}

/* Keeps the event, for the worker to take once this transaction commits. */
static void
sg_webhook_record(Jsonb *payload, const SgWebhookEvent *ev)
{
	Oid			types[7] = {JSONBOID, TEXTOID, TIMESTAMPTZOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = JsonbPGetDatum(payload);
	values[1] = CStringGetTextDatum(ev->tag->tag);
	values[2] = ev->created ? DirectFunctionCall3(timestamptz_in, CStringGetDatum(ev->created),
												  ObjectIdGetDatum(InvalidOid),
												  Int32GetDatum(-1)) : (Datum) 0;
	values[3] = ev->ask_id ? sg_uuid_in(ev->ask_id) : (Datum) 0;
	values[4] = ev->order_id ? sg_uuid_in(ev->order_id) : (Datum) 0;
	values[5] = ev->request_id ? sg_uuid_in(ev->request_id) : (Datum) 0;
	values[6] = ev->request_type ? CStringGetTextDatum(ev->request_type) : (Datum) 0;
	nulls[2] = ev->created ? ' ' : 'n';
	nulls[3] = ev->ask_id ? ' ' : 'n';
	nulls[4] = ev->order_id ? ' ' : 'n';
	nulls[5] = ev->request_id ? ' ' : 'n';
	nulls[6] = ev->request_type ? ' ' : 'n';
	/* asking for a result: a read-only transaction fails rather than skip it */
	(void) sg_spi_as_owner("SELECT switchgrid.record_webhook($1, $2, $3, $4, $5, $6, $7)",
						   7, types, values, nulls, NULL, NULL);
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
	SgWebhookEvent ev;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payload must not be null")));
	/* the size first, on the stored value: a huge payload is not looked into */
	sg_check_jsonb_arg(fcinfo, 0, "webhook payload", SG_MAX_WEBHOOK_BYTES);
	payload = PG_GETARG_JSONB_P(0);

	sg_webhook_envelope(payload, &ev);
	sg_webhook_record(payload, &ev);
	/* the worker takes the event once this transaction commits, if it does */
	sg_worker_wake_at_commit();

	PG_RETURN_VOID();
}
