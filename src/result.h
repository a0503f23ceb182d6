/*-------------------------------------------------------------------------
 * result.h
 *	  A finished request's data: where it is downloaded from, and how it is
 *	  read into the tables.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_RESULT_H
#define SWITCHGRID_RESULT_H

#include "http.h"

/*
 * Where the data of a request of type "type" (may be NULL) is downloaded
 * from: the API's /request/{id}/data?format=json for the types the request
 * table reads from the API, or when there is no dataUrl; the dataUrl
 * otherwise.  Returns the absolute URL, palloc'd; sets *path to what
 * messages show of it and *send_token to whether the bearer token goes with
 * it (only to the API's own origin).
 */
extern char *sg_result_url(const char *request_id, const char *type,
						   const char *data_url, const char **path,
						   bool *send_token);

/* Downloads the data from where sg_result_url() says, in one call (retried like any GET). */
extern SgHttpResponse *sg_fetch_result(const char *request_id, const char *type,
									   const char *data_url, const char *what);

/*
 * Reads a downloaded result with the parser its type names and stores it: a
 * load curve into switchgrid.loadcurve ("prm" names the PRM of a one-PRM
 * payload), anything else as jsonb in switchgrid.requests.data and, for a
 * dataset type, as rows of its table (switchgrid.daily_energy, ...).  Rows
 * of a test-environment Order go to schema switchgrid_test.
 */
extern void sg_store_result(const char *request_id, const char *type,
							const char *prm, SgHttpResponse *resp);

#endif							/* SWITCHGRID_RESULT_H */
