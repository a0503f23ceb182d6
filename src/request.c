/*-------------------------------------------------------------------------
 * request.c
 *	  The vocabulary of data requests and their validation, and the
 *	  SQL function switchgrid_request() that builds one request object.
 *
 * Every check here runs before any HTTP call: an Order is billed, so a typo
 * must fail locally, with a message that says what to change.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "input.h"
#include "json_util.h"
#include "request.h"

typedef enum SgDirectionKind
{
	SG_DIR_NONE,				/* no direction allowed */
	SG_DIR_ENEDIS,				/* SOUTIRAGE | INJECTION */
	SG_DIR_LOADCURVE			/* CONSUMPTION | INJECTION */
} SgDirectionKind;

typedef struct SgRequestType
{
	const char *name;
	SgDirectionKind direction;
	bool		has_period;		/* takes since/until */
	bool		retry_allowed;	/* takes enedisRetryAfterLoadcurveActivation */
} SgRequestType;

static const SgRequestType sg_request_types[] = {
	{"LOADCURVE", SG_DIR_LOADCURVE, true, true},
	{"C68", SG_DIR_NONE, false, false},
	{"C68_ASYNC", SG_DIR_ENEDIS, false, false},
	{"R63", SG_DIR_ENEDIS, true, true},
	{"R63_SYNC", SG_DIR_ENEDIS, true, true},
	{"R64", SG_DIR_ENEDIS, true, false},
	{"R64_SYNC", SG_DIR_ENEDIS, true, false},
	{"R65", SG_DIR_ENEDIS, true, false},
	{"R65_SYNC", SG_DIR_ENEDIS, true, false},
	{"R66", SG_DIR_ENEDIS, true, false},
	{"R66_SYNC", SG_DIR_ENEDIS, true, false},
	{"R67", SG_DIR_ENEDIS, true, false},
};

#define SG_KNOWN_TYPES "LOADCURVE, C68, C68_ASYNC, R63, R63_SYNC, R64, R64_SYNC, R65, R65_SYNC, R66, R66_SYNC, R67"

static const SgRequestType *
sg_find_request_type(const char *name)
{
	size_t		i;

	for (i = 0; i < lengthof(sg_request_types); i++)
	{
		if (strcmp(sg_request_types[i].name, name) == 0)
			return &sg_request_types[i];
	}
	return NULL;
}

void
sg_check_prm(const char *prm)
{
	int			n = 0;
	const char *p;

	for (p = prm; *p; p++, n++)
	{
		if (*p < '0' || *p > '9')
			break;
	}
	if (*p != '\0' || n != 14)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid PRM \"%s\"", sg_quote_start(prm)),
				 errdetail("A PRM (point de livraison) is exactly 14 digits.")));
}

static const char *
sg_scan_digits(const char *p, int n)
{
	while (n-- > 0)
	{
		if (*p < '0' || *p > '9')
			return NULL;
		p++;
	}
	return p;
}

static void
sg_bad_datetime(const char *s, const char *field)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
			 errmsg("invalid \"%s\" value \"%s\"", field, sg_quote_start(s)),
			 errdetail("Use an ISO 8601 date or date-time such as 2024-12-10, 2024-12-10T00:00:00Z, 2024-12-10T00:00:00+01:00 or 2024-12-10T00:00:00[Europe/Paris].")));
}

TimestampTz
sg_parse_api_datetime(const char *s, const char *field)
{
	const char *p = s;
	const char *date_end;
	const char *time_start = NULL;
	const char *time_end = NULL;
	const char *offset_start = NULL;
	const char *offset_end = NULL;
	const char *zone_start = NULL;
	const char *zone_end = NULL;
	StringInfoData pgform;

	/* YYYY-MM-DD */
	if ((p = sg_scan_digits(p, 4)) == NULL || *p++ != '-' ||
		(p = sg_scan_digits(p, 2)) == NULL || *p++ != '-' ||
		(p = sg_scan_digits(p, 2)) == NULL)
		sg_bad_datetime(s, field);
	date_end = p;

	/* THH:MM[:SS[.fff]] */
	if (*p == 'T')
	{
		p++;
		time_start = p;
		if ((p = sg_scan_digits(p, 2)) == NULL || *p++ != ':' ||
			(p = sg_scan_digits(p, 2)) == NULL)
			sg_bad_datetime(s, field);
		if (*p == ':')
		{
			if ((p = sg_scan_digits(p + 1, 2)) == NULL)
				sg_bad_datetime(s, field);
			if (*p == '.')
			{
				const char *q = ++p;

				while (*p >= '0' && *p <= '9')
					p++;
				if (p == q)
					sg_bad_datetime(s, field);
			}
		}
		time_end = p;

		/* Z | +HH[:MM] | -HH[:MM] */
		if (*p == 'Z')
		{
			offset_start = p++;
			offset_end = p;
		}
		else if (*p == '+' || *p == '-')
		{
			offset_start = p++;
			if ((p = sg_scan_digits(p, 2)) == NULL)
				sg_bad_datetime(s, field);
			if (*p == ':')
				p++;
			if (*p >= '0' && *p <= '9' && (p = sg_scan_digits(p, 2)) == NULL)
				sg_bad_datetime(s, field);
			offset_end = p;
		}
	}

	/* [Zone/Name] */
	if (*p == '[')
	{
		zone_start = ++p;
		while (*p && (isalnum((unsigned char) *p) || strchr("_/+-", *p) != NULL))
			p++;
		if (*p != ']' || p == zone_start)
			sg_bad_datetime(s, field);
		zone_end = p++;
	}
	if (*p != '\0')
		sg_bad_datetime(s, field);

	initStringInfo(&pgform);
	appendBinaryStringInfo(&pgform, s, (int) (date_end - s));
	if (time_start)
	{
		appendStringInfoChar(&pgform, ' ');
		appendBinaryStringInfo(&pgform, time_start, (int) (time_end - time_start));
	}
	else
		appendStringInfoString(&pgform, " 00:00:00");
	if (offset_start)
		appendBinaryStringInfo(&pgform, offset_start, (int) (offset_end - offset_start));
	else if (zone_start)
	{
		appendStringInfoChar(&pgform, ' ');
		appendBinaryStringInfo(&pgform, zone_start, (int) (zone_end - zone_start));
	}
	else
		appendStringInfoString(&pgform, "+00");

	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												   CStringGetDatum(pgform.data),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

char *
sg_format_api_timestamp(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	if (fsec != 0)
		return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
						tm.tm_year, tm.tm_mon, tm.tm_mday,
						tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (fsec / 1000));
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec);
}

TimestampTz
sg_api_timestamp_in(const char *s)
{
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												   CStringGetDatum(s),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

static int
sg_cmp_cstring(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Says which request of an order an error is about. */
static void
sg_request_error_context(void *arg)
{
	errcontext("request %d of the order", *(int *) arg);
}

static char *
sg_field_string(JsonbContainer *obj, const char *key, JsonbValue *v)
{
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must be a string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Validates one request object; see sg_validate_requests(). */
static void
sg_validate_request(JsonbContainer *obj, bool have_consent)
{
	JsonbValue *v;
	const SgRequestType *rt;
	char	   *type;
	TimestampTz since = 0,
				until = 0;
	bool		has_since = false,
				has_until = false;
	JsonbIterator *it;
	JsonbValue	kv;
	JsonbIteratorToken tok;

	if (!JsonContainerIsObject(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a request must be a JSON object")));

	/* unknown keys are refused: a misspelt option must not be ignored */
	it = JsonbIteratorInit(obj);
	while ((tok = JsonbIteratorNext(&it, &kv, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = sg_quote_start_len(kv.val.string.val, kv.val.string.len);
		if (strcmp(key, "type") != 0 && strcmp(key, "prms") != 0 &&
			strcmp(key, "direction") != 0 && strcmp(key, "since") != 0 &&
			strcmp(key, "until") != 0 &&
			strcmp(key, "enedisRetryAfterLoadcurveActivation") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%s\" in request", sg_quote_start(key)),
					 errdetail("A request has the keys type, prms, direction, since, until and enedisRetryAfterLoadcurveActivation.")));
	}

	v = sg_jsonb_get(obj, "type");
	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request has no \"type\""),
				 errdetail("Known types: %s.", SG_KNOWN_TYPES)));
	type = sg_field_string(obj, "type", v);
	rt = sg_find_request_type(type);
	if (rt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown request type \"%s\"", sg_quote_start(type)),
				 errdetail("Known types: %s.", SG_KNOWN_TYPES)));

	v = sg_jsonb_get(obj, "prms");
	if (v == NULL)
	{
		if (!have_consent)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s request has no \"prms\"", type),
					 errhint("List the PRMs, or pass the consent_id they come from.")));
	}
	else
	{
		JsonbIterator *ait;
		JsonbValue	elem;
		int			count = 0;
		char	  **prms;

		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"prms\" must be an array of strings")));
		if (JsonContainerSize(v->val.binary.data) > SG_MAX_PRMS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("%s request has too many PRMs", type),
					 errdetail("It has %d; the limit is %d.",
							   (int) JsonContainerSize(v->val.binary.data), SG_MAX_PRMS)));
		prms = palloc(sizeof(char *) * Max(JsonContainerSize(v->val.binary.data), 1));
		ait = JsonbIteratorInit(v->val.binary.data);
		while ((tok = JsonbIteratorNext(&ait, &elem, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (elem.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"prms\" must be an array of strings")));
			prms[count] = pnstrdup(elem.val.string.val, elem.val.string.len);
			sg_check_prm(prms[count]);
			count++;
		}
		if (count == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"prms\" is empty")));
		/* the API refuses a PRM listed twice: say so before anything is billed */
		qsort(prms, count, sizeof(char *), sg_cmp_cstring);
		for (count--; count > 0; count--)
		{
			if (strcmp(prms[count - 1], prms[count]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("PRM %s is listed twice in the %s request", prms[count], type),
						 errhint("List each PRM once.")));
		}
	}

	v = sg_jsonb_get(obj, "direction");
	if (v != NULL)
	{
		char	   *dir = sg_field_string(obj, "direction", v);

		switch (rt->direction)
		{
			case SG_DIR_NONE:
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s request takes no direction", type)));
				break;
			case SG_DIR_ENEDIS:
				if (strcmp(dir, "SOUTIRAGE") != 0 && strcmp(dir, "INJECTION") != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid direction \"%s\" for a request of type %s", sg_quote_start(dir), type),
							 errdetail("Allowed: SOUTIRAGE, INJECTION.")));
				break;
			case SG_DIR_LOADCURVE:
				if (strcmp(dir, "CONSUMPTION") != 0 && strcmp(dir, "INJECTION") != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid direction \"%s\" for a request of type %s", sg_quote_start(dir), type),
							 errdetail("Allowed: CONSUMPTION, INJECTION.")));
				break;
		}
	}

	v = sg_jsonb_get(obj, "since");
	if (v != NULL)
	{
		if (!rt->has_period)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s request takes no \"since\"", type)));
		since = sg_parse_api_datetime(sg_field_string(obj, "since", v), "since");
		has_since = true;
	}
	v = sg_jsonb_get(obj, "until");
	if (v != NULL)
	{
		if (!rt->has_period)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s request takes no \"until\"", type)));
		until = sg_parse_api_datetime(sg_field_string(obj, "until", v), "until");
		has_until = true;
	}
	if (has_since && has_until && since >= until)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"since\" must be earlier than \"until\"")));

	v = sg_jsonb_get(obj, "enedisRetryAfterLoadcurveActivation");
	if (v != NULL)
	{
		if (v->type != jbvBool)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"enedisRetryAfterLoadcurveActivation\" must be a boolean")));
		if (!rt->retry_allowed && v->val.boolean)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s request cannot retry after load-curve activation", type),
					 errdetail("Only LOADCURVE, R63 and R63_SYNC requests take enedisRetryAfterLoadcurveActivation.")));
	}
}

char *
sg_validate_requests(Jsonb *requests, bool have_consent)
{
	JsonbContainer *root = &requests->root;
	ErrorContextCallback errcb;
	int			index = 0;
	StringInfoData out;

	initStringInfo(&out);
	errcb.callback = sg_request_error_context;
	errcb.arg = &index;

	if (JB_ROOT_IS_SCALAR(requests) ||
		(!JsonContainerIsArray(root) && !JsonContainerIsObject(root)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("requests must be a JSON array of request objects, or one request object")));

	if (JsonContainerIsObject(root))
	{
		/* one request object: no context line, there is nothing to point at */
		sg_validate_request(root, have_consent);
		appendStringInfoChar(&out, '[');
		(void) JsonbToCString(&out, root, VARSIZE(requests));
		appendStringInfoChar(&out, ']');
		return out.data;
	}

	{
		int			n = JsonContainerSize(root);
		int			i;

		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an order needs at least one request")));
		if (n > SG_MAX_REQUESTS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("an order has too many requests"),
					 errdetail("It has %d; the limit is %d.", n, SG_MAX_REQUESTS)));
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;
		for (i = 0; i < n; i++)
		{
			JsonbValue *elem = getIthJsonbValueFromContainer(root, i);

			index = i + 1;
			if (elem->type != jbvBinary)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a request must be a JSON object")));
			sg_validate_request(elem->val.binary.data, have_consent);
		}
		error_context_stack = errcb.previous;
	}
	(void) JsonbToCString(&out, root, VARSIZE(requests));
	return out.data;
}

PG_FUNCTION_INFO_V1(switchgrid_request);

/*
 * switchgrid_request(type, prms, direction, since, until,
 *					  retry_after_activation) RETURNS jsonb
 *
 * Builds one request object for switchgrid_order(); makes no HTTP call.
 */
Datum
switchgrid_request(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	char	   *type;
	Jsonb	   *result;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("request type must not be null")));
	type = sg_text_arg_capped(fcinfo, 0, "type", SG_MAX_WORD_CHARS);
	sg_check_array_arg(fcinfo, 1, "prms", SG_MAX_PRMS);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"type\": ");
	sg_json_append_string(&buf, type);

	if (!PG_ARGISNULL(1))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *nulls;
		int			n,
					i;

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("prms must be a one-dimensional array")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		appendStringInfoString(&buf, ", \"prms\": [");
		for (i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("prms must not contain nulls")));
			if (i > 0)
				appendStringInfoString(&buf, ", ");
			sg_json_append_string(&buf, TextDatumGetCString(elems[i]));
		}
		appendStringInfoChar(&buf, ']');
	}
	if (!PG_ARGISNULL(2))
	{
		appendStringInfoString(&buf, ", \"direction\": ");
		sg_json_append_string(&buf, sg_text_arg_capped(fcinfo, 2, "direction", SG_MAX_WORD_CHARS));
	}
	if (!PG_ARGISNULL(3))
	{
		appendStringInfoString(&buf, ", \"since\": ");
		sg_json_append_string(&buf, sg_format_api_timestamp(PG_GETARG_TIMESTAMPTZ(3)));
	}
	if (!PG_ARGISNULL(4))
	{
		appendStringInfoString(&buf, ", \"until\": ");
		sg_json_append_string(&buf, sg_format_api_timestamp(PG_GETARG_TIMESTAMPTZ(4)));
	}
	if (!PG_ARGISNULL(5) && PG_GETARG_BOOL(5))
		appendStringInfoString(&buf, ", \"enedisRetryAfterLoadcurveActivation\": true");
	appendStringInfoChar(&buf, '}');

	result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));

	/*
	 * The same checks as switchgrid_order().  "prms" may be left out here:
	 * an order placed with a consent_id takes the consent's PRMs.
	 */
	(void) sg_validate_requests(result, true);
	PG_RETURN_JSONB_P(result);
}
