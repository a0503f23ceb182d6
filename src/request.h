/*-------------------------------------------------------------------------
 * request.h
 *	  The vocabulary of data requests (types, directions, PRMs, dates) and
 *	  the validation that runs before anything billable is sent.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_REQUEST_H
#define SWITCHGRID_REQUEST_H

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/jsonb.h"

/* Where a request type's data is read from. */
typedef enum SgDataSource
{
	SG_DATA_FROM_URL,			/* the request's dataUrl (Enedis JSON) */
	SG_DATA_FROM_API			/* GET /request/{id}/data?format=json */
} SgDataSource;

/*
 * Which parser reads it, which also says where it is stored.  The payload
 * of every type but the load curves is kept whole in switchgrid.requests.data;
 * a dataset type also has its rows in the table of its dataset
 * (sg_dataset_name()), read by the SQL function switchgrid.<dataset>_rows().
 */
typedef enum SgDataParser
{
	SG_PARSE_JSONB,				/* kept whole only */
	SG_PARSE_LOADCURVE,			/* curveparse.c, a row a step in switchgrid.loadcurve */
	SG_PARSE_R63,				/* r63parse.c (Enedis' raw file), the same rows */
	SG_PARSE_DAILY_ENERGY,		/* R65: switchgrid.daily_energy */
	SG_PARSE_MAX_POWER,			/* R66: switchgrid.max_power */
	SG_PARSE_INDEXES,			/* R64: switchgrid.indexes */
	SG_PARSE_BILLING,			/* R67: switchgrid.billing */
	SG_PARSE_CONTRACTS			/* C68: switchgrid.contracts */
} SgDataParser;

/* Whether a parser's points are load-curve rows (switchgrid.loadcurve). */
static inline bool
sg_parser_is_curve(SgDataParser parser)
{
	return parser == SG_PARSE_LOADCURVE || parser == SG_PARSE_R63;
}

/* What a request type allows; see sg_request_types[] in request.c. */
typedef struct SgRequestType
{
	const char *name;
	const char *const *directions;	/* NULL-terminated; NULL if it takes none */
	bool		dates;			/* takes since/until */
	bool		retry_option;	/* takes enedisRetryAfterLoadcurveActivation */
	SgDataSource source;
	SgDataParser parser;

	/*
	 * What the API keeps and takes, for the types that take since/until:
	 * how far back the data goes, in months before today (0: not dated),
	 * and the longest span one request may cover, in Paris days (0: the
	 * whole history).  switchgrid_order() refuses a span longer than either;
	 * switchgrid_sync() also refuses a "since" older than the history and
	 * splits its requests at the span.
	 */
	int			history_months;
	int			max_span_days;
	/* the type switchgrid_sync() orders for the dataset of its parser */
	bool		sync;
} SgRequestType;

/*
 * The API path of a request's data ("/request/{id}/data", SG_DATA_FROM_API),
 * palloc'd: the one spelling of it.  Which URL a finished request is
 * downloaded from is decided in result.c (sg_result_url).
 */
extern char *sg_request_data_path(const char *request_id);

/* The entry of a request type, or NULL if the name is NULL or unknown. */
extern const SgRequestType *sg_request_type(const char *name);

/*
 * The dataset a parser stores into (the name of its table in schema
 * switchgrid, and of its SQL reader switchgrid.<name>_rows()), or NULL for
 * SG_PARSE_JSONB and the load-curve parsers (SG_PARSE_LOADCURVE, SG_PARSE_R63).
 */
extern const char *sg_dataset_name(SgDataParser parser);

/*
 * The dataset name of a parser as switchgrid_sync() and switchgrid.coverage
 * call it: sg_dataset_name(), and "loadcurve" for both curve parsers; NULL
 * for SG_PARSE_JSONB.
 */
extern const char *sg_sync_dataset_name(SgDataParser parser);

/* The request types whose parser is "parser", as "R65 and R65_SYNC"; palloc'd. */
extern char *sg_dataset_types(SgDataParser parser);

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
extern char *sg_format_api_timestamp(TimestampTz ts, const char *field);

/* Converts an API timestamp (ISO 8601 with offset) to timestamptz. */
extern TimestampTz sg_api_timestamp_in(const char *s);

/* A uuid as text (palloc'd), and text as a uuid (raises 22P02 if it is none). */
extern char *sg_uuid_out(Datum uuid);
extern Datum sg_uuid_in(const char *s);

/* A uuid argument as text; raises 22004 ("<name> must not be null") if NULL. */
extern char *sg_uuid_arg(FunctionCallInfo fcinfo, int argno, const char *name);

/*
 * Appends a text[] or uuid[] to buf as a JSON array of strings.  Raises
 * unless it has one dimension and no nulls; "name" names it in errors.
 */
extern void sg_json_append_array(StringInfo buf, ArrayType *arr, const char *name);

#endif							/* SWITCHGRID_REQUEST_H */
