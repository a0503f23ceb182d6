/*-------------------------------------------------------------------------
 * worker.c
 *	  The background worker that follows Asks and Orders until they are
 *	  finished and stores their results, and the shared state through which
 *	  backends hand it work.
 *
 * One worker per cluster, in switchgrid.database, on a primary only.  It is
 * a pipeline: it keeps up to max_concurrency transfers in flight on one
 * libcurl multi handle, with no transaction open, records each result in
 * its own short transaction as soon as it is in, and claims what is due in
 * the switchgrid.* tables (a short transaction) as slots free up.  A claim
 * lives in the worker's memory only: a crash between the network and the
 * record simply means the same poll is made again after the restart, and
 * every record is an idempotent upsert.
 *
 * The worker never waits on a row another transaction holds.  It reads what
 * is due with SKIP LOCKED, and each record transaction first takes its row
 * locks without waiting (switchgrid.lock_for_record).  An item whose row is
 * held is backed off in the worker's memory, since its row cannot be
 * written, and every other item proceeds.
 *
 * Backends hand the worker two kinds of work through shared memory: Orders
 * placed and billed in a transaction (or savepoint) that rolled back, on a
 * queue that carries nothing else, and Orders that switchgrid_wait() wants
 * followed.  The worker makes them durable at once: a placeholder row in
 * switchgrid.orders (status HANDED_OVER), written before the ids leave the
 * queues, from which they are followed like any other Order.  Webhooks go through the table: the worker takes the events of
 * committed transactions and looks up the unknown Orders they name within a
 * budget (SG_LOOKUPS_PER_MINUTE).  Backends wake the worker by setting its
 * latch, at the commit of a transaction that placed an Order or received a
 * webhook, and at the rollback of one that placed an Order.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "guc.h"
#include "housekeeping.h"
#include "http.h"
#include "json_util.h"
#include "owner.h"
#include "request.h"
#include "result.h"
#include "store.h"
#include "worker.h"

PGDLLEXPORT void switchgrid_worker_main(Datum main_arg);

/*
 * Billed Orders handed over at rollback.  The queue is lossless: a backend
 * reserves a place in it before each POST /order (sg_worker_reserve_order())
 * and holds it until its transaction ends, so that whatever rolls back has
 * a place waiting.  One transaction places at most
 * switchgrid.max_orders_per_transaction Orders, whose largest value is the
 * size of the queue: a transaction alone always fits, and when the open
 * transactions of all backends hold every place, the next Order fails
 * before its POST.
 */
#define SG_ROLLED_BACK_QUEUE SG_MAX_ORDERS_PER_XACT_LIMIT
#define SG_WANTED_QUEUE 16			/* Orders switchgrid_wait() asks for */
/*
 * Downloads in flight.  An answer is kept from the end of its transfer to
 * its record (sg_job_done(), at once), and the transfers in flight are
 * buffered at the same time; a download may be as large as
 * switchgrid.max_response_size: their caps sum to at most
 * SG_FETCH_BUDGET_KB (at least one download).  Orders and Asks have a cap
 * of 4 MB each (http.h), and at most max_concurrency transfers are in
 * flight.
 */
#define SG_FETCH_BUDGET_KB (256 * 1024)
#define SG_FETCH_SLOTS Max(1, SG_FETCH_BUDGET_KB / Max(sg_max_response_kb, 1))
#define SG_READ_EVENTS 1000			/* webhook events taken per read */

/*
 * The pipeline (see sg_worker_step()).  While transfers are in flight the
 * worker wakes at least every SG_NOTICE_MS to see whether a backend set its
 * latch (work was handed over or placed); after a record, it reads the
 * tables again no sooner than SG_REREAD_MS after its last read, since a
 * record may have made something due (the download of a finished Order).
 */
#define SG_NOTICE_MS 20
#define SG_REREAD_MS 100

/*
 * max_requests_per_second = N spaces the starts of requests by (1 s +
 * SG_RATE_SLACK_US) / N: N + 1 requests never start within a second, with
 * a margin for the network, which can bring requests started apart closer
 * together on arrival, where the API counts them.
 */
#define SG_RATE_SLACK_US (50 * 1000)

/*
 * The budget of webhooks: unknown Orders named by committed webhook events
 * are looked up at most SG_LOOKUPS_PER_MINUTE times a minute (a bucket that
 * holds as many), and the same id at most once in SG_LOOKUP_FORGET_S.
 * Beyond that, the hint is dropped (and the drop logged).
 */
#define SG_LOOKUPS_PER_MINUTE 10
#define SG_LOOKUP_FORGET_S 3600
/* the next poll of an item a webhook named while it was in flight */
#define SG_HURRIED_S 1.0

/*
 * The worker's record transactions take their row locks without waiting
 * (switchgrid.lock_for_record).  This lock_timeout bounds any other wait,
 * on a row outside the documented lock order: a load-curve point another
 * transaction is storing, or an Order another transaction is inserting.
 */
#define SG_LOCK_BACKSTOP "100ms"

#define SG_UUID_LEN 36

typedef struct SgShared
{
	slock_t		mutex;
	pid_t		pid;			/* worker, 0 if none */
	Oid			dboid;
	bool		active;			/* extension found, working */
	Latch	   *latch;
	/* billed Orders whose record was rolled back: nothing else goes here */
	int			nrolled_back;
	int			nreserved;		/* places held by open transactions */
	char		rolled_back[SG_ROLLED_BACK_QUEUE][SG_UUID_LEN + 1];
	/* Orders switchgrid_wait() found unrecorded, and wants followed */
	int			nwanted;
	char		wanted[SG_WANTED_QUEUE][SG_UUID_LEN + 1];
} SgShared;

static SgShared *sg_shared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Per backend: Orders placed in the current transaction, and at which
 * level, in TopMemoryContext.  The array grows before each POST
 * (sg_worker_reserve_order()), never after it, so that a billed Order always
 * has a place.  sg_nreserved counts the places this backend holds in the
 * shared queue; each entry of sg_placed stands on one of them.
 */
typedef struct SgPlaced
{
	char		id[SG_UUID_LEN + 1];
	int			nest_level;
} SgPlaced;
static SgPlaced *sg_placed = NULL;
static int	sg_placed_cap = 0;
static int	sg_nplaced = 0;
static int	sg_nreserved = 0;
static bool sg_wake_pending = false;
static bool sg_xact_callback_registered = false;

static void sg_register_xact_callback(void);

/* ----------------------------------------------------------------
 * Shared memory, and the backends' side
 * ----------------------------------------------------------------
 */

static void
sg_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SgShared)));
}

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

	sg_request_shmem(sg_shmem_request);
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
 * Appends an Order id to one of the shared queues.  Returns false if it
 * cannot: no worker has ever worked in this database, or the queue is full.
 * The worker drains both queues into its own memory at every round and
 * after every record, and drops duplicates there.  Called with no lock held.
 */
static bool
sg_is_canonical_uuid(const char *order_id)
{
	int			i;

	/*
	 * Only a canonical uuid goes on a queue: the worker puts it in a URL and
	 * in its own memory, both sized for exactly that.
	 */
	for (i = 0; i <= SG_UUID_LEN; i++)
	{
		char		c = order_id[i];
		bool		ok;

		if (i == SG_UUID_LEN)
			ok = c == '\0';
		else if (i == 8 || i == 13 || i == 18 || i == 23)
			ok = c == '-';
		else
			ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
		if (!ok)
		{
			ereport(LOG,
					(errmsg("switchgrid: an order id that is not a canonical uuid was not handed to the worker"),
					 errhidestmt(true)));
			return false;
		}
	}
	return true;
}

/*
 * With "reserved", the id takes one of the places this backend holds
 * (sg_nreserved), and the place is given back even if the id cannot be
 * queued.
 */
static bool
sg_queue_push(char (*queue)[SG_UUID_LEN + 1], int *n, int capacity, const char *order_id,
			  bool reserved)
{
	bool		queued = false;
	bool		valid = sg_is_canonical_uuid(order_id);

	if (sg_shared == NULL)
		return false;
	SpinLockAcquire(&sg_shared->mutex);
	Assert(*n >= 0 && *n <= capacity);
	if (reserved)
	{
		Assert(sg_nreserved > 0 && sg_shared->nreserved >= sg_nreserved);
		sg_shared->nreserved--;
		sg_nreserved--;
		/* the place was held: the queue cannot be full */
		Assert(*n < capacity);
	}
	if (valid && sg_shared->dboid == MyDatabaseId && *n < capacity)
	{
		memcpy(queue[(*n)++], order_id, SG_UUID_LEN + 1);
		queued = true;
	}
	SpinLockRelease(&sg_shared->mutex);
	return queued;
}

/* Gives back the places this backend still holds, at the end of its transaction. */
static void
sg_release_reserved(void)
{
	if (sg_nreserved == 0 || sg_shared == NULL)
		return;
	SpinLockAcquire(&sg_shared->mutex);
	Assert(sg_shared->nreserved >= sg_nreserved);
	sg_shared->nreserved -= sg_nreserved;
	SpinLockRelease(&sg_shared->mutex);
	sg_nreserved = 0;
}

void
sg_worker_reserve_order(void)
{
	bool		reserved = false;
	int			held = 0;

	/* room for the Order this POST may place, before it is billed */
	if (sg_nplaced + 1 > sg_placed_cap)
	{
		int			cap = Max(32, sg_placed_cap * 2);

		if (sg_placed == NULL)
			sg_placed = MemoryContextAlloc(TopMemoryContext, sizeof(SgPlaced) * cap);
		else
			sg_placed = repalloc(sg_placed, sizeof(SgPlaced) * cap);
		sg_placed_cap = cap;
	}

	/* no shared memory (not preloaded): nothing can be handed over anyway */
	if (sg_shared == NULL)
		return;

	/* a place held is given back at the end of the transaction */
	sg_register_xact_callback();
	SpinLockAcquire(&sg_shared->mutex);
	held = sg_shared->nrolled_back + sg_shared->nreserved;
	if (held < SG_ROLLED_BACK_QUEUE)
	{
		sg_shared->nreserved++;
		sg_nreserved++;
		reserved = true;
	}
	SpinLockRelease(&sg_shared->mutex);
	if (!reserved)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("too many orders are placed by open transactions"),
				 errdetail("The background worker's queue of orders handed over at rollback has room for %d, and all are held.",
						   SG_ROLLED_BACK_QUEUE),
				 errhint("Commit the transactions that place orders sooner, or try again once the worker has recorded the orders handed over.")));
}

char	  **
sg_worker_handed_over_ids(int *n)
{
	char	  **ids = NULL;
	char	   *buf = NULL;
	int			cap = 0;
	int			i;

	*n = 0;
	if (sg_shared == NULL)
		return NULL;
	/* the queue may grow between the look and the copy: a few tries at most */
	for (;;)
	{
		bool		fits;

		SpinLockAcquire(&sg_shared->mutex);
		fits = sg_shared->nrolled_back <= cap;
		if (fits)
		{
			*n = sg_shared->nrolled_back;
			if (*n > 0)
				memcpy(buf, sg_shared->rolled_back, (size_t) *n * (SG_UUID_LEN + 1));
		}
		else
			cap = Min(SG_ROLLED_BACK_QUEUE, sg_shared->nrolled_back + 64);
		SpinLockRelease(&sg_shared->mutex);
		if (fits)
			break;
		if (buf)
			pfree(buf);
		buf = palloc((size_t) cap * (SG_UUID_LEN + 1));
	}
	ids = palloc(sizeof(char *) * Max(*n, 1));
	for (i = 0; i < *n; i++)
		ids[i] = buf + (size_t) i * (SG_UUID_LEN + 1);
	return ids;
}

/*
 * Hands over an Order whose record was rolled back.  It was billed: the
 * queue carries nothing else, so only more than SG_ROLLED_BACK_QUEUE of
 * them between two drains can fill it.  Then the WARNING (and the LOG line
 * of sg_worker_order_placed()) names it, for the user to look it up.
 */
static void
sg_hand_over(const char *order_id)
{
	if (sg_shared == NULL ||
		!sg_queue_push(sg_shared->rolled_back, &sg_shared->nrolled_back,
					   SG_ROLLED_BACK_QUEUE, order_id, sg_nreserved > 0))
		ereport(WARNING,
				(errmsg("order %s was placed, but its record was rolled back", order_id),
				 errdetail("The background worker could not take it over."),
				 errhint("Look it up with switchgrid_order_status() to record it.")));
}

bool
sg_worker_follow(const char *order_id)
{
	bool		queued;

	if (sg_shared == NULL)
		return false;
	queued = sg_queue_push(sg_shared->wanted, &sg_shared->nwanted,
						   SG_WANTED_QUEUE, order_id, false);
	if (queued)
		sg_wake_worker();
	return queued;
}

static void
sg_xact_callback(XactEvent event, void *arg)
{
	int			i;

	Assert(sg_nplaced >= 0 && sg_nplaced <= sg_placed_cap);
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (sg_wake_pending || sg_nplaced > 0)
				sg_wake_worker();
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * A prepared transaction would keep the records of its Orders
			 * out of reach: the worker could not write them while it holds
			 * them, a restart empties the hand-over queue while the prepared
			 * transaction survives it, and a ROLLBACK PREPARED then loses
			 * them, billed.  It would also keep the daily budget's lock.
			 * Refused: the transaction rolls back and hands them over.
			 */
			if (sg_nplaced > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has placed Switchgrid orders"),
						 errdetail("The transaction rolls back; the orders it placed are kept, and the background worker records them.")));
			return;
		case XACT_EVENT_PREPARE:
			/* no Order of this transaction is left (see PRE_PREPARE) */
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
	sg_release_reserved();
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
	Assert(sg_nplaced >= 0 && sg_nplaced <= sg_placed_cap);
	for (i = 0; i < sg_nplaced; i++)
	{
		/* the list never holds an Order of a level already left */
		Assert(sg_placed[i].nest_level >= 1 && sg_placed[i].nest_level <= level);
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
	/* sg_worker_reserve_order() made room before the POST */
	Assert(sg_nplaced >= 0 && sg_nplaced <= sg_placed_cap);
	if (sg_nplaced < sg_placed_cap &&
		(sg_shared == NULL || sg_nplaced < sg_nreserved))
	{
		strlcpy(sg_placed[sg_nplaced].id, order_id, SG_UUID_LEN + 1);
		sg_placed[sg_nplaced].nest_level = GetCurrentTransactionNestLevel();
		sg_nplaced++;
	}
	else
		ereport(WARNING,
				(errmsg("order %s will not be recovered if this transaction rolls back", order_id),
				 errdetail("No place was reserved for it before it was placed.")));
	sg_wake_pending = true;
}

/* ----------------------------------------------------------------
 * The worker
 * ----------------------------------------------------------------
 */

typedef enum SgWorkKind
{
	SG_WORK_ORDER,				/* poll an Order */
	SG_WORK_ASK,				/* poll an Ask */
	SG_WORK_FETCH				/* download a finished request's result */
} SgWorkKind;

#define SG_WORK_KINDS 3

/* Where an item comes from, which decides what its failure means. */
typedef enum SgWorkOrigin
{
	SG_FROM_TABLE,				/* due in switchgrid.*: a failure is recorded */
	SG_FROM_WEBHOOK				/* an unknown Order a webhook named: one look-up */
} SgWorkOrigin;

/*
 * One thing to look at: claimed (in the worker's memory only), then in
 * flight, then recorded.  Everything about it, its answer included, lives
 * in its own memory context, deleted once it is recorded.
 */
typedef struct SgWork
{
	dlist_node	node;			/* in sg_waiting_polls, _fetches or sg_running */
	MemoryContext cxt;
	SgHttpJob	job;
	SgWorkKind	kind;
	SgWorkOrigin origin;
	char	   *id;
	char	   *type;			/* request type, for a download */
	char	   *data_url;		/* dataUrl, for a download */
	char	   *prm;			/* the PRM of a one-PRM request, for a download */
	bool		placeholder;	/* an Order handed over, never recorded yet */
	int			attempts;		/* polls or downloads so far */
	int			failures;		/* failed in a row */
	bool		test_env;		/* an Ask of the test environment */
	bool		hurried;		/* a webhook named it while it was in flight */
} SgWork;

/* What became of an item once its answer came back. */
typedef enum SgOutcome
{
	SG_OUTCOME_RECORDED,		/* the answer, or the failure, is recorded */
	SG_OUTCOME_UNKNOWN,			/* a webhook's Order that the API does not know */
	SG_OUTCOME_LOCKED,			/* another transaction holds its rows */
	SG_OUTCOME_UNCHANGED,		/* the answer changes nothing: not written */
	SG_OUTCOME_FAILED			/* neither the answer nor a failure could be recorded */
} SgOutcome;

/* The names record_failure() and lock_for_record() take, and messages use. */
static const char *const sg_kind_names[SG_WORK_KINDS] = {
	[SG_WORK_ORDER] = "order",
	[SG_WORK_ASK] = "ask",
	[SG_WORK_FETCH] = "request",
};

/*
 * What is due, per kind.  $1 is the limit, $2 the ids the worker backs off
 * in its memory.  Columns: id, attempts, failures, whether another
 * transaction holds the row (checked with SKIP LOCKED: never waited for),
 * then whether an Order is a placeholder (see record_handed_over()),
 * test_env for an Ask, or type, data_url and the one PRM for a download.
 */
static const char *const sg_due_sql[SG_WORK_KINDS] = {
	[SG_WORK_ORDER] =
	"WITH due AS (SELECT order_id, polls, failures, status FROM switchgrid.orders"
	"             WHERE next_poll_at <= now() AND order_id <> ALL ($2)"
	"             ORDER BY next_poll_at LIMIT $1),"
	"     free AS (SELECT order_id FROM switchgrid.orders"
	"              WHERE order_id IN (SELECT order_id FROM due)"
	"              FOR NO KEY UPDATE SKIP LOCKED)"
	" SELECT d.order_id::text, d.polls, d.failures, f.order_id IS NULL,"
	"        d.status = 'HANDED_OVER'"
	" FROM due d LEFT JOIN free f USING (order_id)",
	[SG_WORK_ASK] =
	"WITH due AS (SELECT ask_id, polls, failures, test_env FROM switchgrid.asks"
	"             WHERE next_poll_at <= now() AND ask_id <> ALL ($2)"
	"             ORDER BY next_poll_at LIMIT $1),"
	"     free AS (SELECT ask_id FROM switchgrid.asks"
	"              WHERE ask_id IN (SELECT ask_id FROM due)"
	"              FOR NO KEY UPDATE SKIP LOCKED)"
	" SELECT d.ask_id::text, d.polls, d.failures, f.ask_id IS NULL, d.test_env"
	" FROM due d LEFT JOIN free f USING (ask_id)",
	[SG_WORK_FETCH] =
	"WITH due AS (SELECT request_id, fetches, failures, type, data_url,"
	"                    " SG_SQL_SINGLE_PRM " AS prm"
	"             FROM switchgrid.requests"
	"             WHERE next_fetch_at <= now() AND fetched_at IS NULL"
	"               AND request_id <> ALL ($2)"
	"             ORDER BY next_fetch_at LIMIT $1),"
	"     free AS (SELECT request_id FROM switchgrid.requests"
	"              WHERE request_id IN (SELECT request_id FROM due)"
	"              FOR NO KEY UPDATE SKIP LOCKED)"
	" SELECT d.request_id::text, d.fetches, d.failures, f.request_id IS NULL,"
	"        d.type, d.data_url, d.prm"
	" FROM due d LEFT JOIN free f USING (request_id)",
};

/*
 * The worker's own memory of items, by kind and id, with a time:
 *	sg_held:	 items of the tables that a lock kept from being recorded,
 *				 and Orders whose last poll changed nothing (not written),
 *				 and when to try them again;
 *	sg_handed:	 Orders handed over by backends that could not be written to
 *				 switchgrid.orders yet, and when to try again;
 *	sg_looked_up: unknown Orders named by webhooks, looked up already, and
 *				 until when not to look them up again.
 * All live in TopMemoryContext for the life of the worker.  A worker that
 * exits loses them: held items are due in their tables anyway (an Order
 * polled unchanged is polled once more at once, then backs off again), and
 * sg_handed only holds what a lock kept from its placeholder row (rare,
 * logged; every placed Order is named in the server log too).
 */
typedef struct SgMemoKey
{
	SgWorkKind	kind;
	char		id[SG_UUID_LEN + 1];
} SgMemoKey;

typedef struct SgMemo
{
	SgMemoKey	key;			/* hash key: must be first */
	TimestampTz until;
	int			tries;
} SgMemo;

static HTAB *sg_held = NULL;
static HTAB *sg_handed = NULL;
static HTAB *sg_looked_up = NULL;

/* the bucket of webhook look-ups: tokens left, and when it was last filled */
static double sg_lookup_tokens = SG_LOOKUPS_PER_MINUTE;
static TimestampTz sg_lookup_filled_at = 0;

/* min(cap, base * 2^n), in seconds */
static double
sg_backoff_s(double base, int n, double cap)
{
	double		d = base;

	while (n-- > 0 && d < cap)
		d *= 2;
	return Min(d, cap);
}

static HTAB *
sg_memo_create(const char *name)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SgMemoKey);
	ctl.entrysize = sizeof(SgMemo);
	ctl.hcxt = TopMemoryContext;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static SgMemoKey
sg_memo_key(SgWorkKind kind, const char *id)
{
	SgMemoKey	key;

	/* every id comes from a uuid column or a checked queue: never shorter */
	if (strnlen(id, SG_UUID_LEN + 1) != SG_UUID_LEN)
		elog(ERROR, "switchgrid worker: an id of %zu bytes is not a uuid",
			 strnlen(id, SG_UUID_LEN + 1));
	memset(&key, 0, sizeof(key));	/* the padding is hashed too */
	key.kind = kind;
	memcpy(key.id, id, SG_UUID_LEN);
	return key;
}

static SgMemo *
sg_memo_find(HTAB *memo, SgWorkKind kind, const char *id)
{
	SgMemoKey	key = sg_memo_key(kind, id);

	return (SgMemo *) hash_search(memo, &key, HASH_FIND, NULL);
}

/* Enters an item (tries 0, due now), or returns the entry it already has. */
static SgMemo *
sg_memo_enter(HTAB *memo, SgWorkKind kind, const char *id)
{
	SgMemoKey	key = sg_memo_key(kind, id);
	SgMemo	   *m;
	bool		found;

	m = (SgMemo *) hash_search(memo, &key, HASH_ENTER, &found);
	if (!found)
	{
		m->until = 0;
		m->tries = 0;
	}
	return m;
}

static void
sg_memo_forget(HTAB *memo, SgWorkKind kind, const char *id)
{
	SgMemoKey	key = sg_memo_key(kind, id);

	(void) hash_search(memo, &key, HASH_REMOVE, NULL);
}

/* Drops the entries whose time passed before "before". */
static void
sg_memo_prune(HTAB *memo, TimestampTz before)
{
	HASH_SEQ_STATUS seq;
	SgMemo	   *m;

	hash_seq_init(&seq, memo);
	while ((m = (SgMemo *) hash_seq_search(&seq)) != NULL)
		if (m->until < before)
			(void) hash_search(memo, &m->key, HASH_REMOVE, NULL);
}

/* The earliest time in the memo after "after", or DT_NOEND if none. */
static TimestampTz
sg_memo_earliest(HTAB *memo, TimestampTz after)
{
	HASH_SEQ_STATUS seq;
	SgMemo	   *m;
	TimestampTz t = DT_NOEND;

	hash_seq_init(&seq, memo);
	while ((m = (SgMemo *) hash_seq_search(&seq)) != NULL)
		if (m->until > after)
			t = Min(t, m->until);
	return t;
}

/* Puts an item off: 0.5 s, doubling up to poll_interval. */
static void
sg_memo_back_off(SgMemo *m)
{
	double		delay_s = sg_backoff_s(0.5, m->tries, sg_poll_interval_ms / 1000.0);

	m->until = GetCurrentTimestamp() + (TimestampTz) (delay_s * USECS_PER_SEC);
	m->tries++;
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
	(void) set_config_option("lock_timeout", SG_LOCK_BACKSTOP, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
sg_commit(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Ends a worker transaction that raised an error (from PG_CATCH): returns
 * the error, copied into "cxt", which is left current.
 */
static ErrorData *
sg_abort_with_error(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(cxt);
	return edata;
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
 * Removes the first "taken" ids of a shared queue, once they are safe in the
 * table.  Backends only append, and only the worker removes, so the first
 * "taken" are still the ones it read.
 */
static void
sg_queue_consume(char (*queue)[SG_UUID_LEN + 1], int *n, int taken)
{
	Assert(taken >= 0 && taken <= *n);
	memmove(queue[0], queue[taken], sizeof(queue[0]) * (*n - taken));
	*n -= taken;
}

/*
 * Makes the Orders backends handed over durable, as soon as the worker has
 * them: in one short transaction, switchgrid.record_handed_over() gives each
 * a placeholder row in switchgrid.orders, due now, from which it is
 * followed like any other Order, across any restart; its first answer
 * replaces the placeholder.  The ids leave the shared queues only once that
 * transaction has committed, so a worker that dies meanwhile leaves them to
 * the next one.  An id that could not be written (another transaction is
 * inserting the same Order, or the transaction failed) is kept in sg_handed
 * and tried again after a backoff.  Cheap when there is nothing to take (a
 * look under a spinlock): called at every round and after every record, so
 * that the queues rarely fill.  Allocates in "cxt".
 */
static void
sg_take_handed_over(MemoryContext cxt)
{
	/* a copy of the queue, allocated once: it may hold SG_ROLLED_BACK_QUEUE ids */
	static char (*rolled_back)[SG_UUID_LEN + 1] = NULL;
	char		wanted[SG_WANTED_QUEUE][SG_UUID_LEN + 1];
	int			nrolled_back,
				nwanted,
				n = 0,
				i;
	Datum	   *ids;
	char	  **names;
	List	   *volatile left = NIL;	/* the ids record_handed_over() left */
	List	   *not_written;
	volatile bool failed = false;
	HASH_SEQ_STATUS seq;
	SgMemo	   *m;
	TimestampTz now = GetCurrentTimestamp();

	if (rolled_back == NULL)
		rolled_back = MemoryContextAlloc(TopMemoryContext,
										 sizeof(rolled_back[0]) * SG_ROLLED_BACK_QUEUE);
	SpinLockAcquire(&sg_shared->mutex);
	Assert(sg_shared->nrolled_back >= 0 && sg_shared->nrolled_back <= SG_ROLLED_BACK_QUEUE);
	Assert(sg_shared->nwanted >= 0 && sg_shared->nwanted <= SG_WANTED_QUEUE);
	nrolled_back = sg_shared->nrolled_back;
	memcpy(rolled_back, sg_shared->rolled_back, sizeof(rolled_back[0]) * nrolled_back);
	nwanted = sg_shared->nwanted;
	memcpy(wanted, sg_shared->wanted, sizeof(wanted[0]) * nwanted);
	SpinLockRelease(&sg_shared->mutex);

	/* the queues' ids, and those kept from an earlier try whose time has come */
	names = palloc(sizeof(char *) * (nrolled_back + nwanted + hash_get_num_entries(sg_handed)));
	for (i = 0; i < nrolled_back; i++)
		names[n++] = rolled_back[i];
	for (i = 0; i < nwanted; i++)
		names[n++] = wanted[i];
	hash_seq_init(&seq, sg_handed);
	while ((m = (SgMemo *) hash_seq_search(&seq)) != NULL)
		if (m->until <= now)
			names[n++] = pstrdup(m->key.id);
	if (n == 0)
		return;
	ids = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
		ids[i] = sg_uuid_in(names[i]);

	PG_TRY();
	{
		Oid			types[1] = {UUIDARRAYOID};
		Datum		values[1];
		uint64		k;

		sg_begin();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		values[0] = PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false,
													TYPALIGN_CHAR));
		if (SPI_execute_with_args("SELECT id::text FROM switchgrid.record_handed_over($1) AS id",
								  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not record the orders handed over");
		for (k = 0; k < SPI_processed; k++)
			left = lappend(left, MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[k],
																	   SPI_tuptable->tupdesc, 1)));
		SPI_finish();
		sg_commit();
	}
	PG_CATCH();
	{
		ErrorData  *edata = sg_abort_with_error(cxt);

		ereport(LOG,
				(errmsg("switchgrid worker: could not record %d orders handed over: %s",
						n, edata->message),
				 errdetail("They are kept in memory and tried again.")));
		failed = true;
	}
	PG_END_TRY();
	/* a transaction's end leaves TopMemoryContext current */
	MemoryContextSwitchTo(cxt);

	not_written = left;

	/* safe in the table, or kept in sg_handed: the queues may let them go */
	SpinLockAcquire(&sg_shared->mutex);
	sg_queue_consume(sg_shared->rolled_back, &sg_shared->nrolled_back, nrolled_back);
	sg_queue_consume(sg_shared->wanted, &sg_shared->nwanted, nwanted);
	SpinLockRelease(&sg_shared->mutex);

	for (i = 0; i < n; i++)
	{
		ListCell   *lc;
		bool		kept = failed;

		foreach(lc, not_written)
			if (pg_strcasecmp((char *) lfirst(lc), names[i]) == 0)
				kept = true;
		if (!kept)
			sg_memo_forget(sg_handed, SG_WORK_ORDER, names[i]);
		else
		{
			m = sg_memo_enter(sg_handed, SG_WORK_ORDER, names[i]);
			if (!failed && m->tries == 0)
				ereport(LOG,
						(errmsg("switchgrid worker: order %s handed over is being recorded by another transaction; it is tried again",
								names[i])));
			sg_memo_back_off(m);
		}
	}
}

/*
 * The pipeline: items claimed and waiting for a slot (polls of Orders and
 * Asks on one list, downloads, which have fewer slots, on another), and
 * items in flight.  A claim lives in the worker's memory only: a worker
 * that exits loses it, and the item is due in its table still.  Each item
 * has its own memory context under sg_items_cxt.
 */
static dlist_head sg_waiting_polls = DLIST_STATIC_INIT(sg_waiting_polls);
static dlist_head sg_waiting_fetches = DLIST_STATIC_INIT(sg_waiting_fetches);
static dlist_head sg_running = DLIST_STATIC_INIT(sg_running);
static int	sg_nwaiting_polls = 0;
static int	sg_nwaiting_fetches = 0;
static int	sg_nclaimed[SG_WORK_KINDS];	/* waiting or in flight, per kind */
static int	sg_nrunning[SG_WORK_KINDS];	/* in flight, per kind */
static MemoryContext sg_items_cxt = NULL;
static MemoryContext sg_scratch_cxt = NULL; /* reset at every step */

/* When to read the tables again, and when the last request started. */
static bool sg_read_now = true;		/* as soon as there is room */
static TimestampTz sg_next_read_at = 0;
static TimestampTz sg_last_read_at = 0;
static TimestampTz sg_last_start = 0;

static int
sg_nrunning_total(void)
{
	return sg_nrunning[SG_WORK_ORDER] + sg_nrunning[SG_WORK_ASK] + sg_nrunning[SG_WORK_FETCH];
}

/* Downloads in flight at most: SG_FETCH_SLOTS, within max_concurrency. */
static int
sg_fetch_slots(void)
{
	return Min(SG_FETCH_SLOTS, Max(sg_max_concurrency, 1));
}

/*
 * A new item, in a memory context of its own (where its id is copied),
 * not claimed yet.
 */
static SgWork *
sg_new_work(SgWorkKind kind, SgWorkOrigin origin, const char *id)
{
	MemoryContext cxt = AllocSetContextCreate(sg_items_cxt, "switchgrid item",
											  ALLOCSET_SMALL_SIZES);
	SgWork	   *w = MemoryContextAllocZero(cxt, sizeof(SgWork));

	w->cxt = cxt;
	w->kind = kind;
	w->origin = origin;
	w->id = MemoryContextStrdup(cxt, id);
	return w;
}

/* A copy of "value" (which may be NULL) in the item's context. */
static char *
sg_work_strdup(SgWork *w, const char *value)
{
	return value ? MemoryContextStrdup(w->cxt, value) : NULL;
}

/* Puts an item in line for a slot. */
static void
sg_claim(SgWork *w)
{
	if (w->kind == SG_WORK_FETCH)
	{
		dlist_push_tail(&sg_waiting_fetches, &w->node);
		sg_nwaiting_fetches++;
	}
	else
	{
		dlist_push_tail(&sg_waiting_polls, &w->node);
		sg_nwaiting_polls++;
	}
	sg_nclaimed[w->kind]++;
}

/*
 * Forgets every claim, after an error ended the worker's work: the
 * transfers in flight must have been detached first (sg_http_jobs_abort()).
 * The items are due in their tables still.
 */
static void
sg_forget_claims(void)
{
	dlist_init(&sg_waiting_polls);
	dlist_init(&sg_waiting_fetches);
	dlist_init(&sg_running);
	sg_nwaiting_polls = sg_nwaiting_fetches = 0;
	memset(sg_nclaimed, 0, sizeof(sg_nclaimed));
	memset(sg_nrunning, 0, sizeof(sg_nrunning));
	MemoryContextReset(sg_items_cxt);
	sg_read_now = true;
}

/*
 * The ids of one kind a read must pass over, as a uuid[] Datum: those held
 * in memory whose time has not come, and those claimed (waiting or in
 * flight).
 */
static Datum
sg_excluded_ids(SgWorkKind kind, TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	SgMemo	   *m;
	dlist_head *lists[3] = {&sg_waiting_polls, &sg_waiting_fetches, &sg_running};
	Datum	   *ids = palloc(sizeof(Datum) *
							 (hash_get_num_entries(sg_held) + sg_nclaimed[kind] + 1));
	int			n = 0;
	int			i;

	hash_seq_init(&seq, sg_held);
	while ((m = (SgMemo *) hash_seq_search(&seq)) != NULL)
		if (m->key.kind == kind && m->until > now)
			ids[n++] = sg_uuid_in(m->key.id);
	for (i = 0; i < (int) lengthof(lists); i++)
	{
		dlist_iter	iter;

		dlist_foreach(iter, lists[i])
		{
			SgWork	   *w = dlist_container(SgWork, node, iter.cur);

			if (w->kind == kind)
				ids[n++] = sg_uuid_in(w->id);
		}
	}
	Assert(n <= hash_get_num_entries(sg_held) + sg_nclaimed[kind]);
	return PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/* The ids of one kind in flight, as a uuid[] Datum. */
static Datum
sg_running_ids(SgWorkKind kind)
{
	Datum	   *ids = palloc(sizeof(Datum) * (sg_nrunning[kind] + 1));
	int			n = 0;
	dlist_iter	iter;

	dlist_foreach(iter, &sg_running)
	{
		SgWork	   *w = dlist_container(SgWork, node, iter.cur);

		if (w->kind == kind && w->origin == SG_FROM_TABLE)
			ids[n++] = sg_uuid_in(w->id);
	}
	Assert(n <= sg_nrunning[kind]);
	return PointerGetDatum(construct_array(ids, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/* Marks the Order or Ask in flight with this id as named by a webhook. */
static void
sg_mark_hurried(const char *id)
{
	dlist_iter	iter;

	dlist_foreach(iter, &sg_running)
	{
		SgWork	   *w = dlist_container(SgWork, node, iter.cur);

		if (w->kind != SG_WORK_FETCH && w->origin == SG_FROM_TABLE &&
			pg_strcasecmp(w->id, id) == 0)
			w->hurried = true;
	}
}

/*
 * Whether the budget allows looking up an unknown Order named by a
 * webhook; if so, it is spent.  A token bucket of SG_LOOKUPS_PER_MINUTE,
 * filled at that rate, and each id at most once in SG_LOOKUP_FORGET_S.
 * Sets *dropped if only the budget said no.
 */
static bool
sg_lookup_allowed(const char *order_id, TimestampTz now, bool *dropped)
{
	SgMemo	   *m;

	*dropped = false;
	if (sg_memo_find(sg_looked_up, SG_WORK_ORDER, order_id) != NULL)
		return false;			/* looked up already */

	if (sg_lookup_filled_at != 0)
		sg_lookup_tokens = Min((double) SG_LOOKUPS_PER_MINUTE,
							   sg_lookup_tokens + (double) (now - sg_lookup_filled_at) *
							   SG_LOOKUPS_PER_MINUTE / (60.0 * USECS_PER_SEC));
	sg_lookup_filled_at = now;
	if (sg_lookup_tokens < 1.0)
	{
		*dropped = true;
		return false;
	}
	sg_lookup_tokens -= 1.0;

	m = sg_memo_enter(sg_looked_up, SG_WORK_ORDER, order_id);
	m->until = now + (TimestampTz) SG_LOOKUP_FORGET_S * USECS_PER_SEC;
	/* the bucket bounds what is remembered: what an hour of budget buys */
	Assert(hash_get_num_entries(sg_looked_up) <=
		   SG_LOOKUPS_PER_MINUTE + SG_LOOKUPS_PER_MINUTE * SG_LOOKUP_FORGET_S / 60);
	return true;
}

/*
 * Takes the webhook events of committed transactions (inside the read
 * transaction): switchgrid.take_webhook_events() marks them handled and
 * moves the polls of the known items they name; the unknown Orders it
 * returns are claimed for a look-up, within the budget.  Sets *more if
 * events are left.
 */
static void
sg_take_webhook_hints(bool *more)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	TimestampTz now = GetCurrentTimestamp();
	int			dropped = 0;
	uint64		i;

	sg_memo_prune(sg_looked_up, now);

	/*
	 * The hint for an item in flight would be lost: the events move only
	 * the polls of items not due yet, and the answer on its way may be older
	 * than the event.  Such an item is marked, and polled again soon after
	 * its record (sg_record_success()).  These are among the events taken
	 * just below.
	 */
	if (sg_nrunning[SG_WORK_ORDER] + sg_nrunning[SG_WORK_ASK] > 0)
	{
		Oid			htypes[3] = {UUIDARRAYOID, UUIDARRAYOID, INT4OID};
		Datum		hvalues[3];

		hvalues[0] = sg_running_ids(SG_WORK_ORDER);
		hvalues[1] = sg_running_ids(SG_WORK_ASK);
		hvalues[2] = Int32GetDatum(SG_READ_EVENTS);
		if (SPI_execute_with_args("SELECT coalesce(order_id, ask_id)::text"
								  " FROM (SELECT order_id, ask_id FROM switchgrid.webhook_events"
								  "       WHERE handled_at IS NULL ORDER BY event_id LIMIT $3) e"
								  " WHERE order_id = ANY ($1) OR ask_id = ANY ($2)",
								  3, htypes, hvalues, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read webhook events");
		for (i = 0; i < SPI_processed; i++)
			sg_mark_hurried(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	}

	values[0] = Int32GetDatum(SG_READ_EVENTS);
	if (SPI_execute_with_args("SELECT id::text FROM switchgrid.take_webhook_events($1) AS id",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not take webhook events");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		bool		over_budget;

		if (sg_lookup_allowed(id, now, &over_budget))
			sg_claim(sg_new_work(SG_WORK_ORDER, SG_FROM_WEBHOOK, id));
		else if (over_budget)
			dropped++;
	}
	if (dropped > 0)
		ereport(LOG,
				(errmsg("switchgrid worker: %d unknown orders named by webhooks were not looked up",
						dropped),
				 errdetail("Webhooks are hints; at most %d unknown orders are looked up a minute.",
						   SG_LOOKUPS_PER_MINUTE)));

	if (SPI_execute("SELECT 1 FROM switchgrid.webhook_events WHERE handled_at IS NULL LIMIT 1",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read webhook events");
	if (SPI_processed > 0)
		*more = true;
}

/*
 * Puts off an item of the tables whose row cannot be written, in memory,
 * while every other item goes on: another transaction holds it ("locked",
 * said once in the server log), or even its failure could not be recorded
 * (the error is logged already).
 */
static void
sg_hold(SgWorkKind kind, const char *id, bool locked)
{
	SgMemo	   *m = sg_memo_enter(sg_held, kind, id);

	if (locked && m->tries == 0)
		ereport(LOG,
				(errmsg("switchgrid worker: %s %s is locked by another transaction; it waits, the others go on",
						sg_kind_names[kind], id)));
	sg_memo_back_off(m);
}

/*
 * Runs one of the worker's own fixed statements with its plan kept for the
 * life of the worker (in *cache): the worker reads what is due at every step
 * of its loop, and parsing and planning those reads anew each time cost it a
 * fifth of its time under load.  The plan cache replans them when what they
 * use changes (ALTER EXTENSION UPDATE).
 */
static int
sg_worker_execute(SPIPlanPtr *cache, const char *sql, int nargs, Oid *types,
				  Datum *values, bool read_only, long count)
{
	if (*cache == NULL)
		*cache = sg_spi_prepare(sql, nargs, types, true);
	return SPI_execute_plan(*cache, values, NULL, read_only, count);
}

/*
 * Claims at most "limit" items of one kind that are due (inside the read
 * transaction), passing over those claimed already and those held.  Those
 * another transaction holds are not polled at all but held.  Sets *more if
 * the kind hit its limit.
 */
static void
sg_read_due_kind(SgWorkKind kind, TimestampTz now, int limit, bool *more)
{
	static SPIPlanPtr plans[SG_WORK_KINDS];
	Oid			types[2] = {INT4OID, UUIDARRAYOID};
	Datum		values[2];
	uint64		i;

	values[0] = Int32GetDatum(limit);
	values[1] = sg_excluded_ids(kind, now);
	if (sg_worker_execute(&plans[kind], sg_due_sql[kind], 2, types, values, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pending work");
	if (SPI_processed == (uint64) limit)
		*more = true;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *id = SPI_getvalue(tup, desc, 1);
		bool		isnull;
		SgWork	   *w;

		if (DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull)))
		{
			sg_hold(kind, id, true);
			continue;
		}
		w = sg_new_work(kind, SG_FROM_TABLE, id);
		w->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		w->failures = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		if (kind == SG_WORK_ORDER)
			w->placeholder = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		else if (kind == SG_WORK_ASK)
			w->test_env = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		else if (kind == SG_WORK_FETCH)
		{
			w->type = sg_work_strdup(w, SPI_getvalue(tup, desc, 5));
			w->data_url = sg_work_strdup(w, SPI_getvalue(tup, desc, 6));
			w->prm = sg_work_strdup(w, SPI_getvalue(tup, desc, 7));
		}
		sg_claim(w);
	}
}

/*
 * When the next item not claimed nor held is due, at most poll_interval
 * from now (inside the read transaction).
 */
static TimestampTz
sg_next_due_at(TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[4] = {UUIDARRAYOID, UUIDARRAYOID, UUIDARRAYOID, BOOLOID};
	Datum		values[4];
	/*
	 * A held item whose time has come is due in its table again (the query
	 * below sees it) or is not due at all any more: only the times still to
	 * come count.  A handed-over Order not written yet is due whenever its
	 * time has come.
	 */
	TimestampTz soonest = Min(sg_memo_earliest(sg_held, now),
							  sg_memo_earliest(sg_handed, DT_NOBEGIN));
	long		ms = sg_poll_interval_ms;
	bool		isnull;
	Datum		d;

	values[0] = sg_excluded_ids(SG_WORK_ORDER, now);
	values[1] = sg_excluded_ids(SG_WORK_ASK, now);
	values[2] = sg_excluded_ids(SG_WORK_FETCH, now);
	values[3] = BoolGetDatum(sg_auto_fetch);

	if (sg_worker_execute(&plan, "SELECT (extract(epoch FROM least("
							  " (SELECT min(next_poll_at) FROM switchgrid.orders"
							  "   WHERE order_id <> ALL ($1)),"
							  " (SELECT min(next_poll_at) FROM switchgrid.asks"
							  "   WHERE ask_id <> ALL ($2)),"
							  " (SELECT min(next_fetch_at) FROM switchgrid.requests"
							  "   WHERE $4 AND fetched_at IS NULL AND request_id <> ALL ($3))"
							  ") - now()) * 1000)::float8",
							  4, types, values, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			ms = (long) Max(0, Min((double) ms, DatumGetFloat8(d)));
	}
	if (soonest != DT_NOEND)
		ms = Max(0, Min(ms, (long) ((soonest - now) / 1000) + 1));
	return now + (TimestampTz) ms * 1000;
}

/*
 * Whether the lines are short enough to claim more: half of max_concurrency
 * polls, or half of the download slots, or fewer, are waiting.  Claiming
 * up to twice the slots, in batches, keeps the reads few (one for many
 * records) and the slots full.
 */
static bool
sg_room_to_claim(void)
{
	if (sg_nwaiting_polls <= Max(sg_max_concurrency, 1) / 2)
		return true;
	return sg_auto_fetch && sg_nwaiting_fetches <= sg_fetch_slots() / 2;
}

/*
 * Reads, in one short transaction, what there is to claim: the hints of
 * committed webhooks, then the due Orders, Asks and downloads, each kind up
 * to twice its slots in all (claimed already included).  Then sets when to
 * read again: at once if something was left, else when the next item is
 * due.
 */
static void
sg_read_due(TimestampTz now)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			maxc = Max(sg_max_concurrency, 1);
	int			limits[SG_WORK_KINDS];
	bool		more = false;
	TimestampTz next = 0;
	int			k;

	limits[SG_WORK_ORDER] = 2 * maxc - sg_nclaimed[SG_WORK_ORDER];
	limits[SG_WORK_ASK] = 2 * maxc - sg_nclaimed[SG_WORK_ASK];
	limits[SG_WORK_FETCH] = sg_auto_fetch ? 2 * sg_fetch_slots() - sg_nclaimed[SG_WORK_FETCH] : 0;

	sg_begin();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sg_take_webhook_hints(&more);
	/*
	 * A kind without room is read again soon after one of its items is
	 * recorded (SG_REREAD_MS), which is when it has room again.
	 */
	for (k = 0; k < SG_WORK_KINDS; k++)
		if (limits[k] > 0)
			sg_read_due_kind((SgWorkKind) k, now, limits[k], &more);
	if (!more)
		next = sg_next_due_at(now);
	SPI_finish();
	sg_commit();
	MemoryContextSwitchTo(cxt);

	sg_last_read_at = now;
	sg_read_now = more;
	sg_next_read_at = more ? now + (TimestampTz) sg_poll_interval_ms * 1000 : next;
}

/*
 * Records that the API does not know an Order (HTTP 404).  A recorded Order
 * is tried again after a long backoff.  A placeholder is given up at once
 * (no next poll; the row and its last_error stay, the id being billed): a
 * webhook naming it, or switchgrid_order_status(), revives it.
 */
static void
sg_record_unknown_order(SgWork *w)
{
	if (w->placeholder)
	{
		ereport(LOG,
				(errmsg("switchgrid worker: order %s handed over is unknown to Switchgrid; it is no longer polled",
						w->id)));
		sg_store_failure("order", w->id,
						 "Switchgrid does not know this order (HTTP 404); it was handed over unrecorded and is no longer polled",
						 DT_NOEND);
	}
	else
		sg_store_failure("order", w->id, "Switchgrid does not know this order (HTTP 404)",
						 GetCurrentTimestamp() +
						 (TimestampTz) sg_poll_interval_ms * 10 * 1000);
}

/*
 * Records one successful answer. Runs inside a transaction.  An answer about
 * another id than the one asked for is refused (08P01), like a malformed one.
 */
static void
sg_record_success(SgWork *w, SgHttpJob *job)
{
	SgHttpResponse *resp = job->resp;

	switch (w->kind)
	{
		case SG_WORK_ORDER:
			if (resp->status == 404)
				sg_record_unknown_order(w);
			else
				sg_store_order(sg_response_for_id(resp, job->what, w->id),
							   NULL, NULL,
							   Min(sg_backoff_s(0.5, w->attempts, sg_poll_interval_ms / 1000.0),
								   w->hurried ? SG_HURRIED_S : DBL_MAX),
							   sg_auto_fetch);
			break;
		case SG_WORK_ASK:
			sg_store_ask(sg_response_for_id(resp, job->what, w->id),
						 Min(sg_backoff_s(1.0, w->attempts, 2 * sg_poll_interval_ms / 1000.0),
							 w->hurried ? SG_HURRIED_S : DBL_MAX), -1);
			break;
		case SG_WORK_FETCH:
			sg_store_result(w->id, w->type, w->prm, resp);
			break;
	}
}

/* Records a failed attempt, with the next try after a backoff. */
static void
sg_record_failure(SgWork *w, const char *message, long retry_after_ms)
{
	double		delay_s = sg_backoff_s(1.0, w->failures, sg_poll_interval_ms / 1000.0);

	if (retry_after_ms > 0)
		delay_s = Max(delay_s, retry_after_ms / 1000.0);
	sg_store_failure(sg_kind_names[w->kind], w->id, message,
					 GetCurrentTimestamp() + (TimestampTz) (delay_s * USECS_PER_SEC));
}

/*
 * Takes the item's row locks without waiting: raises 55P03 if one is held.
 * Returns false if there is nothing left to record (a download that
 * switchgrid_wait() stored meanwhile).
 */
static bool
sg_lock_for_record(SgWork *w)
{
	Oid			types[2] = {TEXTOID, UUIDOID};
	Datum		values[2];
	Datum		todo;
	bool		isnull;

	values[0] = CStringGetTextDatum(sg_kind_names[w->kind]);
	values[1] = sg_uuid_in(w->id);
	(void) sg_spi_as_owner("SELECT switchgrid.lock_for_record($1, $2)",
						   2, types, values, NULL, &todo, &isnull);
	return !isnull && DatumGetBool(todo);
}

/*
 * Whether a poll of an Order of the tables answered what is recorded
 * already: then nothing is written, not even the row locks, and the next
 * poll is put off in the worker's memory (sg_hold), not in next_poll_at.
 */
static bool
sg_poll_unchanged(SgWork *w, SgHttpJob *job)
{
	return w->kind == SG_WORK_ORDER && w->origin == SG_FROM_TABLE &&
		job->resp->status != 404 &&
		sg_order_unchanged(sg_response_for_id(job->resp, job->what, w->id), sg_auto_fetch);
}

/*
 * One record transaction: the item's locks, taken without waiting, then
 * the answer of "job" (if "message" is NULL), or else the failure
 * "message".  Returns RECORDED, UNCHANGED (an Order's answer is the one
 * recorded: nothing was written), LOCKED (another transaction holds a row:
 * nothing was written), or FAILED with the error's message and detail in
 * *error (allocated in "cxt"; logged): what last_error keeps, e.g.
 * "malformed response ...: HTTP 200 on GET /order/<id>: ...".
 */
static SgOutcome
sg_try_record(SgWork *w, SgHttpJob *job, const char *message,
			  long retry_after_ms, MemoryContext cxt, char **error)
{
	volatile SgOutcome outcome = SG_OUTCOME_RECORDED;

	sg_begin();
	PG_TRY();
	{
		if (message == NULL && sg_poll_unchanged(w, job))
			outcome = SG_OUTCOME_UNCHANGED;
		/* a download stored meanwhile (by switchgrid_wait()) is not stored twice */
		else if (sg_lock_for_record(w))
		{
			if (message == NULL)
				sg_record_success(w, job);
			else
				sg_record_failure(w, message, retry_after_ms);
		}
		sg_commit();
	}
	PG_CATCH();
	{
		ErrorData  *edata = sg_abort_with_error(cxt);

		if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			outcome = SG_OUTCOME_LOCKED;
		else
		{
			outcome = SG_OUTCOME_FAILED;
			/* the detail says what is wrong with a malformed payload: keep it */
			*error = edata->detail ? psprintf("%s: %s", edata->message, edata->detail)
				: edata->message;
			ereport(LOG,
					(errmsg("switchgrid worker: could not record %s %s: %s",
							sg_kind_names[w->kind], w->id, *error)));
		}
	}
	PG_END_TRY();
	/* a transaction's end leaves TopMemoryContext current */
	MemoryContextSwitchTo(cxt);
	return outcome;
}

/*
 * Records the outcome of one item.  An item of the tables gets its answer
 * recorded, or else its failure as its last error (a malformed payload,
 * say); a webhook's Order has no row to keep an error in, so only a
 * recorded answer counts.  Nothing here stops the worker.
 */
static SgOutcome
sg_record_outcome(SgWork *w, SgHttpJob *job, MemoryContext cxt)
{
	char	   *error = NULL;
	SgOutcome	outcome;

	if (w->origin == SG_FROM_WEBHOOK)
	{
		Assert(w->kind == SG_WORK_ORDER);
		if (job->error != NULL)
			return SG_OUTCOME_FAILED;
		if (job->resp->status == 404)
			return SG_OUTCOME_UNKNOWN;
		return sg_try_record(w, job, NULL, -1, cxt, &error);
	}

	if (job->error != NULL)
		return sg_try_record(w, job, job->error->message, job->retry_after_ms, cxt, &error);
	outcome = sg_try_record(w, job, NULL, -1, cxt, &error);
	if (outcome == SG_OUTCOME_FAILED)
		outcome = sg_try_record(w, job, error, -1, cxt, &error);
	return outcome;
}

/*
 * What the worker remembers of an item after its outcome: an item of the
 * tables whose row could not be written, or whose answer changed nothing
 * (its next_poll_at stays due), is held, its next poll backing off in
 * memory; a webhook's look-up is done, whatever came of it.
 */
static void
sg_remember_outcome(SgWork *w, SgOutcome outcome)
{
	switch (w->origin)
	{
		case SG_FROM_TABLE:
			if (outcome == SG_OUTCOME_RECORDED)
				sg_memo_forget(sg_held, w->kind, w->id);
			else
				sg_hold(w->kind, w->id, outcome == SG_OUTCOME_LOCKED);
			break;
		case SG_FROM_WEBHOOK:
			break;
	}
}

/* The HTTP request that looks at an item, palloc'd in the current context. */
static void
sg_build_job(SgWork *w, SgHttpJob *job)
{
	job->send_token = true;
	job->flags = 0;
	switch (w->kind)
	{
		case SG_WORK_ORDER:
			job->path = psprintf("/order/%s", w->id);
			job->what = psprintf("Order %s", w->id);
			job->flags = SG_HTTP_ALLOW_404;
			job->url = sg_api_url(job->path, NULL);
			break;
		case SG_WORK_ASK:
			job->path = psprintf("/ask/%s", w->id);
			job->what = psprintf("Ask %s", w->id);
			if (w->test_env)
				job->flags = SG_HTTP_TEST_ENV;
			job->url = sg_api_url(job->path, NULL);
			break;
		case SG_WORK_FETCH:
			job->what = psprintf("data of request %s", w->id);
			job->flags = SG_HTTP_DATA;
			job->url = sg_result_url(w->id, w->type, w->data_url, &job->path, &job->send_token);
			break;
	}
}

/*
 * Records the outcome of one item as soon as its transfer has ended, in its
 * own short transaction, while the other transfers wait in libcurl, then
 * frees everything the item held, its answer included (a load curve can be
 * megabytes).  Its slot is free from here on.
 */
static void
sg_job_done(SgHttpJob *job, void *arg)
{
	SgWork	   *w = (SgWork *) ((char *) job - offsetof(SgWork, job));
	MemoryContext old = CurrentMemoryContext;

	Assert(&w->job == job);
	Assert(sg_nrunning[w->kind] > 0 && sg_nclaimed[w->kind] > 0);
	CHECK_FOR_INTERRUPTS();
	dlist_delete(&w->node);
	sg_nrunning[w->kind]--;
	sg_nclaimed[w->kind]--;
	sg_remember_outcome(w, sg_record_outcome(w, job, w->cxt));
	MemoryContextSwitchTo(sg_scratch_cxt);
	sg_take_handed_over(sg_scratch_cxt);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(w->cxt);
	/* the record may have made something due: read again soon */
	sg_next_read_at = Min(sg_next_read_at,
						  sg_last_read_at + (TimestampTz) SG_REREAD_MS * 1000);
}

/*
 * Starts what waits, as long as there is a free slot (downloads first, if
 * one of theirs is free) and max_requests_per_second allows.  Returns 0, or
 * the microseconds the rate limit makes the next start wait.
 */
static long
sg_start_what_fits(void)
{
	int			maxc = Max(sg_max_concurrency, 1);
	long		gap_us = sg_max_requests_per_second > 0 ?
		(USECS_PER_SEC + SG_RATE_SLACK_US) / sg_max_requests_per_second : 0;

	while (sg_nrunning_total() < maxc)
	{
		dlist_head *from;
		SgWork	   *w;
		TimestampTz now;
		MemoryContext old;
		bool		started;

		if (sg_nwaiting_fetches > 0 && sg_nrunning[SG_WORK_FETCH] < sg_fetch_slots())
		{
			from = &sg_waiting_fetches;
			sg_nwaiting_fetches--;
		}
		else if (sg_nwaiting_polls > 0)
		{
			from = &sg_waiting_polls;
			sg_nwaiting_polls--;
		}
		else
			break;

		/* the spacing holds across everything the worker sends */
		now = GetCurrentTimestamp();
		if (gap_us > 0 && sg_last_start != 0 && now - sg_last_start < gap_us)
		{
			if (from == &sg_waiting_fetches)
				sg_nwaiting_fetches++;
			else
				sg_nwaiting_polls++;
			return gap_us - (long) (now - sg_last_start);
		}

		w = dlist_container(SgWork, node, dlist_pop_head_node(from));
		dlist_push_tail(&sg_running, &w->node);
		sg_nrunning[w->kind]++;
		old = MemoryContextSwitchTo(w->cxt);
		sg_build_job(w, &w->job);
		started = sg_http_job_start(&w->job);
		MemoryContextSwitchTo(old);
		if (started)
			sg_last_start = now;
		else
			sg_job_done(&w->job, NULL);		/* refused, never sent */
	}
	return 0;
}

/* Says in pg_stat_activity what is in flight, when that changed. */
static void
sg_report_progress(bool force)
{
	static int	reported[SG_WORK_KINDS] = {-1, -1, -1};

	if (!force && memcmp(reported, sg_nrunning, sizeof(reported)) == 0)
		return;
	memcpy(reported, sg_nrunning, sizeof(reported));
	if (sg_nrunning_total() == 0)
		pgstat_report_activity(STATE_IDLE, "switchgrid: idle");
	else
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("switchgrid: polling %d orders and %d asks, downloading %d results",
										sg_nrunning[SG_WORK_ORDER], sg_nrunning[SG_WORK_ASK],
										sg_nrunning[SG_WORK_FETCH]));
}

/*
 * One step of the pipeline: take what backends handed over; claim what is
 * due when the lines are short and a read is due (a backend woke the
 * worker, the last read left something, the next item's time came, or a
 * record may have made something due); start what the slots and the rate
 * limit allow; then drive the transfers for a moment, recording each as
 * soon as it ends.  No transaction is open while a transfer is driven.
 * Returns how long the worker may sleep on its latch: 0 while transfers
 * are in flight (the step waited in libcurl already).
 */
static long
sg_worker_step(void)
{
	TimestampTz now;
	long		rate_wait_us;
	bool		chores = false;

	MemoryContextSwitchTo(sg_scratch_cxt);
	MemoryContextReset(sg_scratch_cxt);

	/* handed over by backends: made durable first */
	sg_take_handed_over(sg_scratch_cxt);

	now = GetCurrentTimestamp();
	if ((sg_read_now || now >= sg_next_read_at) && sg_room_to_claim())
	{
		/* chores; forget held items not seen for a while (deleted, say) */
		sg_expire_webhook_events();
		sg_memo_prune(sg_held, now - (TimestampTz) SG_LOOKUP_FORGET_S * USECS_PER_SEC);
		MemoryContextSwitchTo(sg_scratch_cxt);
		sg_read_due(now);
		chores = true;
	}

	rate_wait_us = sg_start_what_fits();
	sg_report_progress(chores);

	if (sg_nrunning_total() == 0)
	{
		pgstat_report_stat(false);
		now = GetCurrentTimestamp();
		/* only the rate limit holds back what waits */
		if (sg_nwaiting_polls + sg_nwaiting_fetches > 0)
			return Max(1, rate_wait_us / 1000 + 1);
		if (sg_read_now)
			return 0;
		return (long) Max(0, Min((sg_next_read_at - now) / 1000 + 1,
								 (TimestampTz) sg_poll_interval_ms));
	}

	(void) sg_http_jobs_drive(rate_wait_us > 0 ? Min(SG_NOTICE_MS, rate_wait_us / 1000 + 1)
							  : SG_NOTICE_MS,
							  sg_job_done, NULL);
	pgstat_report_stat(false);
	/* a backend handed work over, or placed an Order: look at once */
	if (MyLatch->is_set)
	{
		ResetLatch(MyLatch);
		sg_read_now = true;
	}
	return 0;
}

void
switchgrid_worker_main(Datum main_arg)
{
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

	sg_items_cxt = AllocSetContextCreate(TopMemoryContext, "switchgrid worker items",
										 ALLOCSET_DEFAULT_SIZES);
	sg_scratch_cxt = AllocSetContextCreate(TopMemoryContext, "switchgrid worker scratch",
										   ALLOCSET_DEFAULT_SIZES);
	sg_held = sg_memo_create("switchgrid held items");
	sg_handed = sg_memo_create("switchgrid handed-over orders");
	sg_looked_up = sg_memo_create("switchgrid webhook look-ups");

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
		/* while it has work in hand, the worker goes on with it */
		else if (sg_nclaimed[SG_WORK_ORDER] + sg_nclaimed[SG_WORK_ASK] +
				 sg_nclaimed[SG_WORK_FETCH] == 0 && !sg_extension_installed())
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
				sleep_ms = sg_worker_step();
			}
			PG_CATCH();
			{
				/*
				 * A step that fails as a whole (no token configured, a read
				 * that fails) is logged and tried again after poll_interval,
				 * rather than making the worker exit and restart in a loop.
				 * What was claimed or in flight is dropped: it is due in its
				 * table still.
				 */
				MemoryContextSwitchTo(TopMemoryContext);
				EmitErrorReport();
				FlushErrorState();
				if (IsTransactionState() || IsAbortedTransactionBlockState())
					AbortCurrentTransaction();
				sg_http_jobs_abort();
				sg_forget_claims();
				MemoryContextReset(sg_scratch_cxt);
				sg_report_progress(true);
				sleep_ms = sg_poll_interval_ms;
			}
			PG_END_TRY();
			MemoryContextSwitchTo(TopMemoryContext);
		}

		if (sleep_ms > 0)
		{
			int			rc;

			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			if (rc & WL_LATCH_SET)
				sg_read_now = true;
		}
	}
}
