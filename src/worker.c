/*-------------------------------------------------------------------------
 * worker.c
 *	  The background worker that follows Asks and Orders until they are
 *	  finished and stores their results, and the shared state through which
 *	  backends wake it.
 *
 * One worker per cluster, in switchgrid.database, on a primary only.  Each
 * round it reads what is due from the switchgrid.* tables (a short
 * transaction), talks to the API with no transaction open (many requests at
 * once on one libcurl multi handle), then records each result in its own
 * short transaction.  Nothing is claimed on disk: a crash between the
 * network and the record simply means the same poll is made again after the
 * restart, and every record is an idempotent upsert.
 *
 * Backends wake the worker by setting its latch, at the commit of a
 * transaction that placed an Order or received a webhook.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "access/xlog.h"
#include "pgstat.h"
#include "storage/pmsignal.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "guc.h"
#include "housekeeping.h"
#include "http.h"
#include "json_util.h"
#include "result.h"
#include "store.h"
#include "worker.h"

PGDLLEXPORT void switchgrid_worker_main(Datum main_arg);

#define SG_ADOPT_QUEUE 64			/* Orders handed over by backends */
#define SG_ROUND_LIMIT 64			/* Asks, and Orders, polled per round */
#define SG_ROUND_FETCHES 16			/* downloads per round: bodies can be megabytes */
#define SG_UUID_LEN 36

typedef struct SgShared
{
	slock_t		mutex;
	pid_t		pid;			/* worker, 0 if none */
	Oid			dboid;
	bool		active;			/* extension found, working */
	Latch	   *latch;
	int			nadopt;
	char		adopt[SG_ADOPT_QUEUE][SG_UUID_LEN + 1];
} SgShared;

static SgShared *sg_shared = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* per backend: Orders placed in the current transaction, and at which level */
#define SG_MAX_PLACED 32
typedef struct SgPlaced
{
	char		id[SG_UUID_LEN + 1];
	int			nest_level;
} SgPlaced;
static SgPlaced sg_placed[SG_MAX_PLACED];
static int	sg_nplaced = 0;
static bool sg_wake_pending = false;
static bool sg_xact_callback_registered = false;

/* ----------------------------------------------------------------
 * Shared memory
 * ----------------------------------------------------------------
 */

#if PG_VERSION_NUM >= 150000
static void
sg_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SgShared)));
}
#endif

static void
sg_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sg_shared = ShmemInitStruct("switchgrid", sizeof(SgShared), &found);
	if (!found)
	{
		memset(sg_shared, 0, sizeof(SgShared));
		SpinLockInit(&sg_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
sg_worker_register(void)
{
	BackgroundWorker bgw;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sg_shmem_request;
#else
	RequestAddinShmemSpace(MAXALIGN(sizeof(SgShared)));
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sg_shmem_startup;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* a standby has nothing to record: start once recovery is over */
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "switchgrid");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "switchgrid_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "switchgrid worker");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "switchgrid worker");
	RegisterBackgroundWorker(&bgw);
}

static void
sg_wake_worker(void)
{
	Latch	   *latch = NULL;

	if (sg_shared == NULL)
		return;
	SpinLockAcquire(&sg_shared->mutex);
	if (sg_shared->pid != 0)
		latch = sg_shared->latch;
	SpinLockRelease(&sg_shared->mutex);
	if (latch)
		SetLatch(latch);
}

bool
sg_worker_is_active(void)
{
	bool		active;

	if (sg_shared == NULL)
		return false;
	SpinLockAcquire(&sg_shared->mutex);
	active = sg_shared->pid != 0 && sg_shared->active &&
		sg_shared->dboid == MyDatabaseId;
	SpinLockRelease(&sg_shared->mutex);
	return active;
}

/*
 * Queues an Order for the worker to look up.  Returns false if it cannot:
 * no worker, a worker following another database, or a full queue.
 */
static bool
sg_adopt_push(const char *order_id)
{
	bool		queued = false;
	int			i;

	if (sg_shared == NULL)
		return false;
	SpinLockAcquire(&sg_shared->mutex);
	if (sg_shared->dboid == MyDatabaseId)
	{
		for (i = 0; i < sg_shared->nadopt && !queued; i++)
			queued = strcmp(sg_shared->adopt[i], order_id) == 0;
		if (!queued && sg_shared->nadopt < SG_ADOPT_QUEUE)
		{
			strlcpy(sg_shared->adopt[sg_shared->nadopt++], order_id, SG_UUID_LEN + 1);
			queued = true;
		}
	}
	SpinLockRelease(&sg_shared->mutex);
	return queued;
}

/* Hands over an Order whose record was rolled back, or says it could not. */
static void
sg_hand_over(const char *order_id)
{
	if (!sg_adopt_push(order_id))
		ereport(WARNING,
				(errmsg("order %s was placed, but its record was rolled back", order_id),
				 errhint("Look it up with switchgrid_order_status() to record it.")));
}

void
sg_worker_adopt(const char *order_id)
{
	(void) sg_adopt_push(order_id);
	sg_wake_worker();
}

static void
sg_xact_callback(XactEvent event, void *arg)
{
	int			i;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (sg_wake_pending || sg_nplaced > 0)
				sg_wake_worker();
			break;
		case XACT_EVENT_PREPARE:
			/* the outcome is decided later: the worker checks (idempotently) */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* placed and billed, but the record is gone: hand it over */
			for (i = 0; i < sg_nplaced; i++)
				sg_hand_over(sg_placed[i].id);
			if (sg_nplaced > 0)
				sg_wake_worker();
			break;
		default:
			return;
	}
	sg_nplaced = 0;
	sg_wake_pending = false;
}

/* A rolled-back savepoint loses the records of the Orders placed under it. */
static void
sg_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i,
				kept = 0;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	for (i = 0; i < sg_nplaced; i++)
	{
		if (sg_placed[i].nest_level < level)
			sg_placed[kept++] = sg_placed[i];
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			sg_placed[i].nest_level = level - 1;
			sg_placed[kept++] = sg_placed[i];
		}
		else
		{
			sg_hand_over(sg_placed[i].id);
			sg_wake_worker();
		}
	}
	sg_nplaced = kept;
}

static void
sg_register_xact_callback(void)
{
	if (!sg_xact_callback_registered)
	{
		RegisterXactCallback(sg_xact_callback, NULL);
		RegisterSubXactCallback(sg_subxact_callback, NULL);
		sg_xact_callback_registered = true;
	}
}

void
sg_worker_wake_at_commit(void)
{
	sg_register_xact_callback();
	sg_wake_pending = true;
}

void
sg_worker_order_placed(const char *order_id)
{
	/* the server log keeps every placed Order, whatever happens next */
	ereport(LOG,
			(errmsg("switchgrid: placed order %s", order_id),
			 errhidestmt(true)));
	sg_register_xact_callback();
	if (sg_nplaced < SG_MAX_PLACED)
	{
		strlcpy(sg_placed[sg_nplaced].id, order_id, SG_UUID_LEN + 1);
		sg_placed[sg_nplaced].nest_level = GetCurrentTransactionNestLevel();
		sg_nplaced++;
	}
	else
		ereport(WARNING,
				(errmsg("order %s will not be recovered if this transaction rolls back", order_id),
				 errdetail("A transaction tracks at most %d placed orders.", SG_MAX_PLACED)));
	sg_wake_pending = true;
}

/* ----------------------------------------------------------------
 * The worker
 * ----------------------------------------------------------------
 */

/* One thing to look at in a round. */
typedef struct SgWork
{
	char		kind;			/* 'o' Order, 'a' Ask, 'f' fetch a result */
	char	   *id;
	char	   *type;			/* request type, for 'f' */
	char	   *url;			/* dataUrl, for 'f' */
	char	   *prm;			/* first PRM, for 'f' */
	int			attempts;		/* polls or downloads so far */
	int			failures;		/* failed in a row */
	bool		test_env;		/* an Ask of the test environment */
	bool		adopted;		/* an Order known only from the adopt queue */
} SgWork;

/* min(cap, base * 2^n), in seconds */
static double
sg_backoff_s(double base, int n, double cap)
{
	double		d = base;

	while (n-- > 0 && d < cap)
		d *= 2;
	return Min(d, cap);
}

static void
sg_worker_detach(int code, Datum arg)
{
	SpinLockAcquire(&sg_shared->mutex);
	sg_shared->pid = 0;
	sg_shared->latch = NULL;
	sg_shared->active = false;
	SpinLockRelease(&sg_shared->mutex);
}

static void
sg_set_active(bool active)
{
	SpinLockAcquire(&sg_shared->mutex);
	sg_shared->active = active;
	SpinLockRelease(&sg_shared->mutex);
}

/*
 * Starts a short transaction with a snapshot.  A background worker must set
 * the statement start time itself, or now() would stay at its start.
 */
static void
sg_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* never wait long on a row a user's transaction holds: retry later */
	(void) set_config_option("lock_timeout", "5s", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());
}

static bool
sg_extension_installed(void)
{
	bool		found;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	found = OidIsValid(get_extension_oid("switchgrid", true));
	CommitTransactionCommand();
	return found;
}

/*
 * Reads what is due, in a short transaction.  The list is allocated in
 * "cxt".  Sets *more if a kind hit SG_ROUND_LIMIT.
 */
static List *
sg_claim_work(MemoryContext cxt, bool *more)
{
	List	   *work = NIL;
	Oid			types[3] = {INT4OID, BOOLOID, INT4OID};
	Datum		values[3];
	uint64		i;
	int			counts[3] = {0, 0, 0};

	values[0] = Int32GetDatum(SG_ROUND_LIMIT);
	values[1] = BoolGetDatum(sg_auto_fetch);
	values[2] = Int32GetDatum(SG_ROUND_FETCHES);

	sg_begin();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(
			"(SELECT 'o', order_id::text, NULL, NULL, NULL, polls, failures FROM switchgrid.orders"
			"  WHERE next_poll_at <= now() ORDER BY next_poll_at LIMIT $1)"
			" UNION ALL "
			"(SELECT 'a', ask_id::text, NULL, test_env::text, NULL, polls, failures"
			"  FROM switchgrid.asks"
			"  WHERE next_poll_at <= now() ORDER BY next_poll_at LIMIT $1)"
			" UNION ALL "
			"(SELECT 'f', request_id::text, type, data_url,"
			"        " SG_SQL_SINGLE_PRM ", fetches, failures"
			"  FROM switchgrid.requests"
			"  WHERE $2 AND next_fetch_at <= now() AND fetched_at IS NULL"
			"  ORDER BY next_fetch_at LIMIT $3)",
			3, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pending work");

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SgWork	   *w = palloc0(sizeof(SgWork));
		bool		isnull;

		w->kind = SPI_getvalue(tup, desc, 1)[0];
		w->id = SPI_getvalue(tup, desc, 2);
		w->type = SPI_getvalue(tup, desc, 3);
		w->url = SPI_getvalue(tup, desc, 4);
		w->prm = SPI_getvalue(tup, desc, 5);
		w->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		w->failures = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
		if (w->kind == 'a')
		{
			w->test_env = w->url != NULL && strcmp(w->url, "true") == 0;
			w->url = NULL;
		}
		work = lappend(work, w);
		MemoryContextSwitchTo(old);
		counts[w->kind == 'o' ? 0 : w->kind == 'a' ? 1 : 2]++;
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	*more = counts[0] == SG_ROUND_LIMIT || counts[1] == SG_ROUND_LIMIT ||
		counts[2] == SG_ROUND_FETCHES;
	return work;
}

/* Orders that backends handed over (placed in a rolled-back transaction). */
static List *
sg_take_adopted(List *work, MemoryContext cxt)
{
	char		ids[SG_ADOPT_QUEUE][SG_UUID_LEN + 1];
	int			n,
				i;

	SpinLockAcquire(&sg_shared->mutex);
	n = sg_shared->nadopt;
	memcpy(ids, sg_shared->adopt, sizeof(ids[0]) * n);
	sg_shared->nadopt = 0;
	SpinLockRelease(&sg_shared->mutex);

	for (i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SgWork	   *w = palloc0(sizeof(SgWork));

		w->kind = 'o';
		w->id = pstrdup(ids[i]);
		w->adopted = true;
		work = lappend(work, w);
		MemoryContextSwitchTo(old);
	}
	return work;
}

/* Records one successful answer. Runs inside a transaction. */
static void
sg_record_success(SgWork *w, SgHttpResponse *resp)
{
	switch (w->kind)
	{
		case 'o':
			if (resp->status == 404)
				sg_store_failure("order", w->id, "Switchgrid does not know this order (HTTP 404)",
								 GetCurrentTimestamp() +
								 (TimestampTz) sg_poll_interval_ms * 10 * 1000);
			else
				sg_store_order(sg_body_to_jsonb(resp->body, resp->len, "an Order"),
							   NULL, NULL,
							   sg_backoff_s(0.5, w->attempts, sg_poll_interval_ms / 1000.0),
							   sg_auto_fetch);
			break;
		case 'a':
			sg_store_ask(sg_body_to_jsonb(resp->body, resp->len, "an Ask"),
						 sg_backoff_s(1.0, w->attempts, 2 * sg_poll_interval_ms / 1000.0), -1);
			break;
		case 'f':
			sg_store_result(w->id, w->type, w->prm, resp);
			break;
	}
}

static const char *
sg_kind_name(char kind)
{
	return kind == 'o' ? "order" : kind == 'a' ? "ask" : "request";
}

/* Records a failed attempt, with the next try after a backoff. */
static void
sg_record_failure(SgWork *w, const char *message, long retry_after_ms)
{
	double		delay_s = sg_backoff_s(1.0, w->failures, sg_poll_interval_ms / 1000.0);

	if (retry_after_ms > 0)
		delay_s = Max(delay_s, retry_after_ms / 1000.0);
	sg_store_failure(sg_kind_name(w->kind), w->id, message,
					 GetCurrentTimestamp() + (TimestampTz) (delay_s * USECS_PER_SEC));
}

/*
 * Records the outcome of one item in its own transaction.  An error (a
 * malformed payload, say) is logged and recorded as the item's last error;
 * it never stops the worker.
 */
static void
sg_record_outcome(SgWork *w, SgHttpJob *job, MemoryContext cxt)
{
	char	   *volatile failure = NULL;

	if (job->error == NULL && w->adopted && job->resp->status == 404)
		return;					/* nothing to adopt */

	sg_begin();
	PG_TRY();
	{
		if (job->error != NULL)
		{
			if (!w->adopted)
				sg_record_failure(w, job->error->message, job->retry_after_ms);
		}
		else
			sg_record_success(w, job->resp);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		failure = edata->message;
		ereport(LOG,
				(errmsg("switchgrid worker: could not record %s %s: %s",
						sg_kind_name(w->kind), w->id, edata->message)));
	}
	PG_END_TRY();

	if (failure != NULL && !w->adopted)
	{
		PG_TRY();
		{
			sg_begin();
			sg_record_failure(w, failure, -1);
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		PG_CATCH();
		{
			/* the item stays due and is tried again next round */
			MemoryContextSwitchTo(cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
		}
		PG_END_TRY();
	}
	/* an adopted Order that could not be looked up or recorded: keep it */
	if (w->adopted && (failure != NULL || job->error != NULL))
		sg_adopt_push(w->id);
}

/* Milliseconds until the next item is due, at most poll_interval. */
static long
sg_next_due_ms(void)
{
	long		ms = sg_poll_interval_ms;
	bool		isnull;
	Datum		d;

	sg_begin();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT (extract(epoch FROM least("
					" (SELECT min(next_poll_at) FROM switchgrid.orders),"
					" (SELECT min(next_poll_at) FROM switchgrid.asks),"
					" (SELECT min(next_fetch_at) FROM switchgrid.requests"
					"   WHERE fetched_at IS NULL AND current_setting('switchgrid.auto_fetch')::bool)"
					") - now()) * 1000)::float8", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			ms = (long) Max(0, Min((double) ms, DatumGetFloat8(d)));
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return ms;
}

/* One round: read what is due, ask the API, record.  Returns the next sleep. */
static long
sg_worker_round(MemoryContext cxt)
{
	List	   *work;
	bool		more;
	int			n,
				i,
				norders = 0,
				nasks = 0,
				nfetch = 0;
	SgHttpJob  *jobs;
	ListCell   *lc;

	sg_expire_webhook_events();
	work = sg_claim_work(cxt, &more);
	work = sg_take_adopted(work, cxt);
	n = list_length(work);
	if (n == 0)
		return sg_next_due_ms();

	MemoryContextSwitchTo(cxt);
	jobs = palloc0(sizeof(SgHttpJob) * n);
	i = 0;
	foreach(lc, work)
	{
		SgWork	   *w = (SgWork *) lfirst(lc);
		SgHttpJob  *job = &jobs[i++];

		job->send_token = true;
		job->flags = 0;
		switch (w->kind)
		{
			case 'o':
				job->path = psprintf("/order/%s", w->id);
				job->what = psprintf("Order %s", w->id);
				job->flags = SG_HTTP_ALLOW_404;
				norders++;
				break;
			case 'a':
				job->path = psprintf("/ask/%s", w->id);
				job->what = psprintf("Ask %s", w->id);
				if (w->test_env)
					job->flags = SG_HTTP_TEST_ENV;
				nasks++;
				break;
			case 'f':
				job->what = psprintf("data of request %s", w->id);
				nfetch++;
				job->url = sg_result_url(w->id, w->type, w->url, &job->path, &job->send_token);
				break;
		}
		if (job->url == NULL)
			job->url = sg_api_url(job->path, w->kind == 'f' ? "format=json" : NULL);
	}

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("switchgrid: polling %d orders and %d asks, downloading %d results",
									norders, nasks, nfetch));
	sg_http_run_jobs(jobs, n, sg_max_concurrency, sg_max_requests_per_second);

	i = 0;
	foreach(lc, work)
	{
		SgHttpJob  *job = &jobs[i++];

		CHECK_FOR_INTERRUPTS();
		sg_record_outcome((SgWork *) lfirst(lc), job, cxt);
		/* a load curve can be megabytes: give it back at once */
		if (job->resp != NULL)
			pfree(job->resp->body);
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);

	return more ? 0 : sg_next_due_ms();
}

void
switchgrid_worker_main(Datum main_arg)
{
	MemoryContext round_cxt;
	volatile bool said_waiting = false;
	volatile bool said_standby = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (sg_shared == NULL)
		elog(ERROR, "switchgrid shared memory is not initialized");

	/* one static worker per cluster: the postmaster never starts two */
	SpinLockAcquire(&sg_shared->mutex);
	sg_shared->pid = MyProcPid;
	sg_shared->latch = MyLatch;
	sg_shared->active = false;
	SpinLockRelease(&sg_shared->mutex);
	before_shmem_exit(sg_worker_detach, (Datum) 0);

	BackgroundWorkerInitializeConnection(sg_database, NULL, 0);
	/* the worker is a superuser: resolve nothing through a user's schema */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SpinLockAcquire(&sg_shared->mutex);
	sg_shared->dboid = MyDatabaseId;
	SpinLockRelease(&sg_shared->mutex);
	pgstat_report_appname("switchgrid worker");

	round_cxt = AllocSetContextCreate(TopMemoryContext, "switchgrid worker round",
									  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		volatile long sleep_ms = sg_poll_interval_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			ereport(LOG,
					(errmsg("switchgrid worker: settings reloaded: poll_interval=%d ms, max_concurrency=%d, max_requests_per_second=%d, auto_fetch=%s",
							sg_poll_interval_ms, sg_max_concurrency,
							sg_max_requests_per_second, sg_auto_fetch ? "on" : "off")));
		}

		if (RecoveryInProgress())
		{
			if (!said_standby)
				ereport(LOG, (errmsg("switchgrid worker: the server is a standby; waiting")));
			said_standby = true;
			sg_set_active(false);
		}
		else if (!sg_extension_installed())
		{
			if (!said_waiting)
				ereport(LOG,
						(errmsg("switchgrid worker: extension \"switchgrid\" is not installed in database \"%s\"; waiting for CREATE EXTENSION",
								sg_database)));
			said_waiting = true;
			sg_set_active(false);
			pgstat_report_activity(STATE_IDLE, "switchgrid: waiting for CREATE EXTENSION");
			/* a catalog look-up a second is cheap, and CREATE EXTENSION is noticed at once */
			sleep_ms = Min(sleep_ms, 1000);
		}
		else
		{
			if (said_waiting)
				ereport(LOG, (errmsg("switchgrid worker: extension found; starting")));
			said_waiting = said_standby = false;
			sg_set_active(true);
			PG_TRY();
			{
				sleep_ms = sg_worker_round(round_cxt);
			}
			PG_CATCH();
			{
				/*
				 * A round that fails as a whole (no token configured, say) is
				 * logged and tried again after poll_interval, rather than
				 * making the worker exit and restart in a loop.
				 */
				MemoryContextSwitchTo(TopMemoryContext);
				EmitErrorReport();
				FlushErrorState();
				if (IsTransactionState() || IsAbortedTransactionBlockState())
					AbortCurrentTransaction();
				pgstat_report_activity(STATE_IDLE, NULL);
				sleep_ms = sg_poll_interval_ms;
			}
			PG_END_TRY();
			MemoryContextSwitchTo(TopMemoryContext);
			MemoryContextReset(round_cxt);
		}

		if (sleep_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
