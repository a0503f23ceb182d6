/*-------------------------------------------------------------------------
 * budget.h
 *	  The billing budget: how many Orders a transaction, and a day, may place.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_BUDGET_H
#define SWITCHGRID_BUDGET_H

/*
 * To be called right before each POST /order, once the Order is known to be
 * valid.  Raises an error (SQLSTATE 53400) if the Order would go past
 * switchgrid.max_orders_per_transaction or switchgrid.max_orders_per_day;
 * otherwise counts the POST against this transaction and reserves the
 * Order's place in the worker's hand-over queue (sg_worker_reserve_order()).
 * With a daily budget, takes a lock held until the transaction ends.
 */
extern void sg_budget_before_order(void);

#endif							/* SWITCHGRID_BUDGET_H */
