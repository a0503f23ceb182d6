/*-------------------------------------------------------------------------
 * housekeeping.h
 *	  The chores of the worker besides following Orders.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_HOUSEKEEPING_H
#define SWITCHGRID_HOUSEKEEPING_H

/*
 * Deletes the webhook events older than switchgrid.webhook_retention, in
 * its own short transaction, at most once a minute unless a batch was left
 * over.  For the worker, outside a transaction, once a round; never raises
 * an error (a failure is logged and tried again later).
 */
extern void sg_expire_webhook_events(void);

#endif							/* SWITCHGRID_HOUSEKEEPING_H */
