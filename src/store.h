/*-------------------------------------------------------------------------
 * store.h
 *	  Recording Asks, Orders and fetched data in the switchgrid.* tables.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_STORE_H
#define SWITCHGRID_STORE_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* callers that record with SQL of their own use sg_spi_as_owner() */
#include "owner.h"

/*
 * "poll_in_s": seconds until the worker looks at a waiting Ask or Order
 * again.  "test_env": whether the Ask was created with switchgrid.test_env
 * (1, 0, or -1 for unknown: keep what is recorded).
 */
extern void sg_store_ask(Jsonb *ask, double poll_in_s, int test_env);
/*
 * sg_store_order() returns false if the answer was not written because it
 * changes nothing (see sg_order_unchanged()), true if it was recorded.
 */
extern bool sg_order_unchanged(Jsonb *order, bool fetch);
extern bool sg_store_order(Jsonb *order, const char *sent_requests,
						   const char *consent_id, double poll_in_s, bool fetch);
/* The same for an Order just placed: "test_env" as for sg_store_ask(). */
extern bool sg_store_placed_order(Jsonb *order, const char *sent_requests,
								  const char *consent_id, double poll_in_s,
								  bool fetch, int test_env);
/*
 * Keeps a payload in switchgrid.requests.data and, if "dataset" is not NULL,
 * stores its rows in that dataset's table (all or none: a payload of the
 * wrong shape is kept raw, with last_error saying why).
 */
extern void sg_store_data(const char *request_id, Jsonb *data, const char *dataset);
extern int64 sg_store_loadcurve(const char *request_id, int64 n, Datum *prms,
								Datum *ts, Datum *step_s, Datum *power,
								bool *power_null);
/* A failed attempt of "kind" ('order', 'ask', 'request'); retry_at DT_NOEND: given up. */
extern void sg_store_failure(const char *kind, const char *id, const char *error,
							 TimestampTz retry_at);

/*
 * The SQL expression for the one PRM of a switchgrid.requests row: its only
 * PRM, or NULL when it has several (a multi-PRM payload names its PRMs).
 */
#define SG_SQL_SINGLE_PRM "CASE WHEN cardinality(prms) = 1 THEN prms[1] END"

/*
 * What is recorded of a request: its one PRM (see above, or its consent's:
 * sg_request_consent_prm()), its type and its dataUrl, each palloc'd, or
 * NULL (all NULL for a request not recorded).
 */
extern void sg_request_lookup(const char *request_id, char **prm, char **type,
							  char **data_url);

/*
 * The meter of a request that names no PRM, of an Order placed by consent:
 * the one PRM of that consent, from the Asks recorded here (palloc'd).
 * NULL if the request names PRMs or its Order no consent.  Raises an error
 * (42704) if no recorded Ask holds the consent: nothing here knows the meter.
 */
extern char *sg_request_consent_prm(const char *request_id);

#endif							/* SWITCHGRID_STORE_H */
