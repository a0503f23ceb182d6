/*-------------------------------------------------------------------------
 * guc.h
 *	  The switchgrid.* settings, and the one way to obtain the API token.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_GUC_H
#define SWITCHGRID_GUC_H

extern char *sg_base_url;
extern char *sg_api_token;
extern char *sg_api_token_file;
extern bool sg_test_env;
extern int	sg_timeout_ms;
extern int	sg_connect_timeout_ms;
extern int	sg_max_retries;
extern int	sg_max_response_kb;

/*
 * The billing budget.  The largest value of max_orders_per_transaction is
 * also the size of the worker's queue of Orders handed over at rollback
 * (worker.c), so that one transaction's Orders always fit in it.
 */
#define SG_MAX_ORDERS_PER_XACT_LIMIT 10000
extern int	sg_max_orders_per_xact;
extern int	sg_max_orders_per_day;

/* the worker's */
extern char *sg_database;
extern int	sg_poll_interval_ms;
extern int	sg_max_concurrency;
extern int	sg_max_requests_per_second;
extern bool sg_auto_fetch;
extern int	sg_webhook_retention_min;

extern void sg_define_gucs(void);

/*
 * Whether a host name (as a URL parser returns it, without port) names this
 * machine: localhost, [::1] or 127.x.y.z.  The rule of plain-http URLs.
 */
extern bool sg_host_is_loopback(const char *host);

/*
 * Returns the API token as a palloc'd string; the caller should wipe it with
 * sg_forget_token() once the request is built.  Raises an error (SQLSTATE
 * 28000) when no token is configured or the token file cannot be read; the
 * error never contains the token.
 */
extern char *sg_get_token(void);
extern void sg_forget_token(char *token);

#endif							/* SWITCHGRID_GUC_H */
