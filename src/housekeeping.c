/*-------------------------------------------------------------------------
 * housekeeping.c
 *	  The chores of the worker besides following Orders: expiring old
 *	  webhook events.  And switchgrid.worker_follows(), through which SQL
 *	  (the switchgrid.pending view) sees whether a worker runs here.
 *
 * The deleting itself is SQL, switchgrid.expire_webhook_events(), next to
 * the table it deletes from.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "guc.h"
#include "housekeeping.h"
#include "worker.h"

#define SG_EXPIRE_EVERY_MS	60000	/* between two expiries, when all was done */
#define SG_EXPIRE_BATCH		10000	/* events deleted per transaction */

void
sg_expire_webhook_events(void)
{
	static TimestampTz next_at = 0;
	MemoryContext cxt = CurrentMemoryContext;
	volatile int64 deleted = 0;

	if (sg_webhook_retention_min <= 0 || GetCurrentTimestamp() < next_at)
		return;

	PG_TRY();
	{
		Oid			types[2] = {INTERVALOID, INT4OID};
		Datum		values[2];
		bool		isnull;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "switchgrid: expiring webhook events");
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		values[0] = DirectFunctionCall3(interval_in,
										CStringGetDatum(psprintf("%d minutes",
																 sg_webhook_retention_min)),
										ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		values[1] = Int32GetDatum(SG_EXPIRE_BATCH);
		if (SPI_execute_with_args("SELECT switchgrid.expire_webhook_events($1, $2)",
								  2, types, values, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not expire webhook events");
		deleted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		ereport(LOG,
				(errmsg("switchgrid worker: could not expire webhook events: %s",
						edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();

	if (deleted > 0)
		elog(DEBUG1, "switchgrid worker: expired " INT64_FORMAT " webhook events", deleted);
	/* a full batch means more are due: go on next round */
	next_at = deleted >= SG_EXPIRE_BATCH ? 0 :
		GetCurrentTimestamp() + (TimestampTz) SG_EXPIRE_EVERY_MS * 1000;
}

PG_FUNCTION_INFO_V1(switchgrid_worker_follows);

/* switchgrid.worker_follows() RETURNS boolean */
Datum
switchgrid_worker_follows(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(sg_worker_is_active());
}
