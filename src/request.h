/*-------------------------------------------------------------------------
 * request.h
 *	  The vocabulary of data requests (types, directions, PRMs, dates) and
 *	  the validation that runs before anything billable is sent.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_REQUEST_H
#define SWITCHGRID_REQUEST_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* Raises 22023 unless "prm" is exactly 14 ASCII digits. */
extern void sg_check_prm(const char *prm);

/*
 * Validates an Order's "requests" (an array of request objects, or one
 * object) and returns them as JSON text of an array.  "have_consent" says
 * whether a consentId accompanies them (then "prms" may be omitted).
 */
extern char *sg_validate_requests(Jsonb *requests, bool have_consent);

/*
 * Parses "since"/"until" in the forms the API accepts (2024-12-10,
 * 2024-12-10T00:00:00, ...Z, ...+01:00, ...[Europe/Paris]); no offset means
 * UTC.  Raises 22007 on anything else.
 */
extern TimestampTz sg_parse_api_datetime(const char *s, const char *field);

/* Formats a timestamp as the API's UTC form, e.g. 2024-12-10T23:00:00Z. */
extern char *sg_format_api_timestamp(TimestampTz ts);

/* Converts an API timestamp (ISO 8601 with offset) to timestamptz. */
extern TimestampTz sg_api_timestamp_in(const char *s);

#endif							/* SWITCHGRID_REQUEST_H */
