/*-------------------------------------------------------------------------
 * worker.h
 *	  The background worker that follows Orders to the end, and the small
 *	  shared state through which backends wake it.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_WORKER_H
#define SWITCHGRID_WORKER_H

/* From _PG_init() while preloading: shared memory and the worker itself. */
extern void sg_worker_register(void);

/*
 * Notes an Order placed by the current transaction: the worker is woken at
 * commit; if the transaction rolls back, the Order (already placed and
 * billed) is handed to the worker so that its record is not lost, on a
 * shared queue that carries nothing else.
 */
extern void sg_worker_order_placed(const char *order_id);

/*
 * Before each POST /order: makes room for the Order it may place, here and
 * in the shared queue of Orders handed over at rollback, so that a billed
 * Order always reaches the worker.  Raises an error (SQLSTATE 53000) when
 * the open transactions of all backends hold every place of that queue.
 * The place is given back when the transaction ends.
 */
extern void sg_worker_reserve_order(void);

/*
 * The ids on the queue of Orders handed over at rollback that the worker
 * has not taken yet, palloc'd (*n of them).
 */
extern char **sg_worker_handed_over_ids(int *n);

/* Wakes the worker when the current transaction commits. */
extern void sg_worker_wake_at_commit(void);

/*
 * Asks the worker to follow an Order that is not recorded here (one that
 * switchgrid_wait() found on the API).  Returns false if it cannot take it
 * now (no worker in this database, or its small queue is full).
 */
extern bool sg_worker_follow(const char *order_id);

/* Whether a worker is running and working in this database. */
extern bool sg_worker_is_active(void);

#endif							/* SWITCHGRID_WORKER_H */
