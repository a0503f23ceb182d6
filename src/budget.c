/*-------------------------------------------------------------------------
 * budget.c
 *	  The billing budget: switchgrid.max_orders_per_transaction and
 *	  switchgrid.max_orders_per_day, checked before every POST /order.
 *
 * Every Order is billed when it is placed, so both limits count POSTs made,
 * not Orders that survive: an Order whose subtransaction rolled back was
 * billed all the same.  Going past a limit is an ERROR before the POST; it
 * rolls the transaction back, and the Orders it placed are handed to the
 * worker (worker.c), which records them.  This file only says yes or no;
 * it does not track the Orders themselves.
 *
 * The daily count is the Orders recorded in switchgrid.orders in the last
 * 24 hours (by the later of the API's createdAt and when it was recorded
 * here, so that a wrong createdAt cannot hide one), those of this
 * transaction included, plus the Orders handed over at
 * rollback that the worker has not recorded yet (each counted once: only
 * the ids on the queue that switchgrid.orders does not hold).  Two sessions
 * must not both see room for the last Order: while a daily budget is set,
 * each transaction that places an Order first takes an exclusive
 * transaction-level advisory lock (the extension's oid, 1), so the
 * transactions that place Orders take turns, and the count reads what was
 * committed up to then, whatever the isolation level.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "budget.h"
#include "guc.h"
#include "owner.h"
#include "request.h"
#include "worker.h"

/* the second key of the advisory lock the daily budget takes */
#define SG_BUDGET_LOCK_KEY 1

/* POST /order made by the current top-level transaction */
static int	sg_orders_posted = 0;
static bool sg_budget_callback_registered = false;

static void
sg_budget_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			sg_orders_posted = 0;
			break;
		default:
			break;
	}
}

/*
 * Takes the daily budget's lock until the end of the transaction: an
 * advisory lock, as pg_advisory_xact_lock(<oid of the extension>, 1) would
 * take it, so that it shows in pg_locks and a user's own advisory locks do
 * not collide with it.
 */
static void
sg_budget_lock(void)
{
	LOCKTAG		tag;
	Oid			ext = get_extension_oid("switchgrid", false);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ext, SG_BUDGET_LOCK_KEY, 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* The Orders placed in the last 24 hours, as the header comment counts them. */
static int64
sg_orders_of_the_day(void)
{
	Oid			types[1] = {UUIDARRAYOID};
	Datum		values[1];
	Datum	   *uuids;
	char	  **ids;
	int			n,
				i;
	Datum		result;
	bool		isnull;

	ids = sg_worker_handed_over_ids(&n);
	uuids = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
		uuids[i] = sg_uuid_in(ids[i]);
	values[0] = PointerGetDatum(construct_array(uuids, n, UUIDOID, UUID_LEN, false,
												TYPALIGN_CHAR));
	(void) sg_spi_latest_as_owner(
		"SELECT (SELECT count(*) FROM switchgrid.orders o"
		"        WHERE GREATEST(o.created_at, o.first_seen)"
		"              > clock_timestamp() - interval '24 hours')"
		"     + (SELECT count(*) FROM unnest($1) AS q(id)"
		"        WHERE NOT EXISTS (SELECT 1 FROM switchgrid.orders o"
		"                          WHERE o.order_id = q.id))",
		1, types, values, NULL, &result, &isnull);
	return isnull ? 0 : DatumGetInt64(result);
}

void
sg_budget_before_order(void)
{
	if (!sg_budget_callback_registered)
	{
		RegisterXactCallback(sg_budget_xact_callback, NULL);
		sg_budget_callback_registered = true;
	}

	if (sg_orders_posted >= sg_max_orders_per_xact)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("order budget exceeded: switchgrid.max_orders_per_transaction is %d",
						sg_max_orders_per_xact),
				 errdetail("This transaction has placed %d orders. They are kept: the background worker records them.",
						   sg_orders_posted),
				 errhint("Place the orders in several transactions, or have a superuser raise switchgrid.max_orders_per_transaction.")));

	if (sg_max_orders_per_day > 0)
	{
		int64		placed;

		sg_budget_lock();
		placed = sg_orders_of_the_day();
		if (placed >= sg_max_orders_per_day)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("order budget exceeded: switchgrid.max_orders_per_day is %d",
							sg_max_orders_per_day),
					 errdetail("%lld orders were placed in the last 24 hours.",
							   (long long) placed),
					 errhint("Wait until older orders leave the 24-hour window, or have a superuser raise switchgrid.max_orders_per_day.")));
	}

	sg_worker_reserve_order();
	/* counted before the POST: once it is sent, it may be billed */
	sg_orders_posted++;
}
