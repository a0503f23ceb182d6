/*-------------------------------------------------------------------------
 * store.h
 *	  Recording Asks, Orders and fetched data in the switchgrid.* tables.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_STORE_H
#define SWITCHGRID_STORE_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/*
 * "poll_in_s": seconds until the worker looks at a waiting Ask or Order
 * again.  "test_env": whether the Ask was created with switchgrid.test_env
 * (1, 0, or -1 for unknown: keep what is recorded).
 */
extern void sg_store_ask(Jsonb *ask, double poll_in_s, int test_env);
extern void sg_store_order(Jsonb *order, const char *sent_requests,
						   const char *consent_id, double poll_in_s, bool fetch);
extern void sg_store_data(const char *request_id, Jsonb *data);
extern int64 sg_store_loadcurve(const char *request_id, int64 n, Datum *prms,
								Datum *ts, Datum *power, bool *power_null);
extern void sg_store_failure(const char *kind, const char *id, const char *error,
							 TimestampTz retry_at);

/* Whether a request type's data is a Switchgrid load curve (/request/{id}/data). */
extern bool sg_is_curve_type(const char *type);

/*
 * Parses and stores a downloaded result: a load curve into
 * switchgrid.loadcurve ("prm" names the PRM of a one-PRM payload), anything
 * else as jsonb in switchgrid.requests.data.
 */
struct SgHttpResponse;
extern void sg_store_result(const char *request_id, const char *type,
							const char *prm, struct SgHttpResponse *resp);

/*
 * Runs one SQL statement through SPI as the owner of the switchgrid schema
 * (the extension's owner), so that a role granted only EXECUTE on the API
 * functions can still have its Orders recorded without any access to the
 * tables.  Returns SPI_processed; with "result" set, the first column of the
 * first row (copied out of SPI), or (Datum) 0 / *isnull if none.
 */
extern uint64 sg_spi_as_owner(const char *sql, int nargs, Oid *types,
							  Datum *values, const char *nulls,
							  Datum *result, bool *isnull);

#endif							/* SWITCHGRID_STORE_H */
