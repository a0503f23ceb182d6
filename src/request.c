/*-------------------------------------------------------------------------
 * request.c
 *	  The vocabulary of data requests and their validation, and the
 *	  SQL function switchgrid_request() that builds one request object.
 *
 * Every check here runs before any HTTP call: an Order is billed, so a typo
 * must fail locally, with a message that says what to change.
 *
 * What each request type allows, and where its data comes from, is said
 * once, in sg_request_types[]; the checks and their hints read it, and so
 * do the download (result.c) and switchgrid_data().
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "input.h"
#include "iso8601.h"
#include "json_util.h"
#include "request.h"

static const char *const sg_dir_enedis[] = {"SOUTIRAGE", "INJECTION", NULL};
static const char *const sg_dir_loadcurve[] = {"CONSUMPTION", "INJECTION", NULL};

/*
 * Every request type the API takes: the directions it allows (NULL: none),
 * whether it takes since/until, whether it takes
 * enedisRetryAfterLoadcurveActivation, where its data is read from, and
 * which parser reads it.  A type the API sends that is not here (a newer
 * one) is read from its dataUrl and kept as jsonb.
 */
static const SgRequestType sg_request_types[] = {
	/*
	 * History: "load curve ... back to about 24 months; daily energies and
	 * max powers back to about 36 months" (Enedis); indexes and billing
	 * quantities are daily and monthly measures of the same meter, taken as
	 * 36 months too.  Span: R63_SYNC is one synchronous Enedis call, at most
	 * 7 days; LOADCURVE is split by Switchgrid ("a few minutes for a load
	 * curve over 24 months"), and the asynchronous files take any period
	 * within the history.  sync: the type switchgrid_sync() orders for each
	 * dataset, the newer of each pair as the guide advises.
	 */
	{"LOADCURVE", sg_dir_loadcurve, true, true, SG_DATA_FROM_API, SG_PARSE_LOADCURVE, 24, 0, true},
	{"C68", NULL, false, false, SG_DATA_FROM_URL, SG_PARSE_CONTRACTS, 0, 0, true},
	{"C68_ASYNC", sg_dir_enedis, false, false, SG_DATA_FROM_URL, SG_PARSE_CONTRACTS, 0, 0, false},
	{"R63", sg_dir_enedis, true, true, SG_DATA_FROM_URL, SG_PARSE_R63, 24, 0, false},
	{"R63_SYNC", sg_dir_enedis, true, true, SG_DATA_FROM_URL, SG_PARSE_R63, 24, 7, false},
	{"R64", sg_dir_enedis, true, false, SG_DATA_FROM_URL, SG_PARSE_INDEXES, 36, 0, false},
	{"R64_SYNC", sg_dir_enedis, true, false, SG_DATA_FROM_URL, SG_PARSE_INDEXES, 36, 0, true},
	{"R65", sg_dir_enedis, true, false, SG_DATA_FROM_URL, SG_PARSE_DAILY_ENERGY, 36, 0, false},
	{"R65_SYNC", sg_dir_enedis, true, false, SG_DATA_FROM_URL, SG_PARSE_DAILY_ENERGY, 36, 0, true},
	{"R66", sg_dir_enedis, true, false, SG_DATA_FROM_URL, SG_PARSE_MAX_POWER, 36, 0, false},
	{"R66_SYNC", sg_dir_enedis, true, false, SG_DATA_FROM_URL, SG_PARSE_MAX_POWER, 36, 0, true},
	{"R67", sg_dir_enedis, true, false, SG_DATA_FROM_URL, SG_PARSE_BILLING, 36, 0, true},
};

/* The keys a request object may have; any other is a typo. */
static const char *const sg_request_keys[] = {
	"type", "prms", "direction", "since", "until",
	"enedisRetryAfterLoadcurveActivation", NULL
};

const SgRequestType *
sg_request_type(const char *name)
{
	size_t		i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < lengthof(sg_request_types); i++)
	{
		if (strcmp(sg_request_types[i].name, name) == 0)
			return &sg_request_types[i];
	}
	return NULL;
}

/* The table (and SQL reader) of each dataset parser; see request.h. */
static const char *const sg_dataset_names[] = {
	[SG_PARSE_JSONB] = NULL,
	[SG_PARSE_LOADCURVE] = NULL,
	[SG_PARSE_R63] = NULL,
	[SG_PARSE_DAILY_ENERGY] = "daily_energy",
	[SG_PARSE_MAX_POWER] = "max_power",
	[SG_PARSE_INDEXES] = "indexes",
	[SG_PARSE_BILLING] = "billing",
	[SG_PARSE_CONTRACTS] = "contracts",
};

const char *
sg_dataset_name(SgDataParser parser)
{
	Assert((size_t) parser < lengthof(sg_dataset_names));
	return sg_dataset_names[parser];
}

const char *
sg_sync_dataset_name(SgDataParser parser)
{
	return sg_parser_is_curve(parser) ? "loadcurve" : sg_dataset_name(parser);
}

/* "a, b, c" or, with last_sep " and ", "a, b and c"; palloc'd. */
static char *
sg_join(const char *const *items, int n, const char *last_sep)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, i == n - 1 ? last_sep : ", ");
		appendStringInfoString(&buf, items[i]);
	}
	return buf.data;
}

/* The names of the types for which "pred" holds (every type if NULL). */
static char *
sg_type_names(bool (*pred) (const SgRequestType *), const char *last_sep)
{
	const char *names[lengthof(sg_request_types)];
	int			n = 0;
	size_t		i;

	for (i = 0; i < lengthof(sg_request_types); i++)
	{
		if (pred == NULL || pred(&sg_request_types[i]))
			names[n++] = sg_request_types[i].name;
	}
	return sg_join(names, n, last_sep);
}

char *
sg_dataset_types(SgDataParser parser)
{
	const char *names[lengthof(sg_request_types)];
	int			n = 0;
	size_t		i;

	for (i = 0; i < lengthof(sg_request_types); i++)
	{
		if (sg_request_types[i].parser == parser)
			names[n++] = sg_request_types[i].name;
	}
	return sg_join(names, n, " and ");
}

static bool
sg_takes_retry_option(const SgRequestType *rt)
{
	return rt->retry_option;
}

/* The length of a NULL-terminated list. */
static int
sg_list_length(const char *const *list)
{
	int			n = 0;

	while (list[n] != NULL)
		n++;
	return n;
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

static void
sg_bad_datetime(const char *s, const char *field)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
			 errmsg("invalid \"%s\" value \"%s\"", field, sg_quote_start(s)),
			 errdetail("Use an ISO 8601 date or date-time such as 2024-12-10, 2024-12-10T00:00:00Z, 2024-12-10T00:00:00+01:00 or 2024-12-10T00:00:00[Europe/Paris].")));
}

/*
 * timestamptz_in() of "pgform", the PostgreSQL spelling of the API
 * date-time "s": a date that does not exist (month 13, February 30) is
 * reported as a bad "s" (22007), without timestamptz_in()'s hint about
 * DateStyle, which does not apply to the API's fixed format.
 */
static TimestampTz
sg_timestamptz_in_checked(const char *pgform, const char *s, const char *field)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile TimestampTz ts = 0;
	volatile bool bad = false;

	PG_TRY();
	{
		ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
													 CStringGetDatum(pgform),
													 ObjectIdGetDatum(InvalidOid),
													 Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		bad = true;
	}
	PG_END_TRY();
	if (bad)
		sg_bad_datetime(s, field);
	return ts;
}

TimestampTz
sg_parse_api_datetime(const char *s, const char *field)
{
	SgIsoDateTime dt;
	StringInfoData pgform;

	if (!sg_iso_scan_datetime(s, &dt))
		sg_bad_datetime(s, field);

	/* the same instant in PostgreSQL's input syntax, whose checks then apply */
	initStringInfo(&pgform);
	appendBinaryStringInfo(&pgform, s, dt.date_len);
	if (dt.time_start)
	{
		appendStringInfoChar(&pgform, ' ');
		appendBinaryStringInfo(&pgform, dt.time_start, dt.time_len);
	}
	else
		appendStringInfoString(&pgform, " 00:00:00");
	if (dt.offset_start)
		appendBinaryStringInfo(&pgform, dt.offset_start, dt.offset_len);
	else if (dt.zone_start)
	{
		appendStringInfoChar(&pgform, ' ');
		appendBinaryStringInfo(&pgform, dt.zone_start, dt.zone_len);
	}
	else
		appendStringInfoString(&pgform, "+00");

	return sg_timestamptz_in_checked(pgform.data, s, field);
}

char *
sg_format_api_timestamp(TimestampTz ts, const char *field)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s must be a finite timestamp", field),
				 errhint("Give a date or a date and time, such as '2024-12-10' or '2024-12-10 00:00 Europe/Paris'.")));
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

char *
sg_request_data_path(const char *request_id)
{
	return psprintf("/request/%s/data", request_id);
}

char *
sg_uuid_out(Datum uuid)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, uuid));
}

Datum
sg_uuid_in(const char *s)
{
	/* uuid_in() would quote the whole of a long string */
	if (strlen(s) > 2 * UUID_LEN + 8)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s: \"%s\"", "uuid", sg_quote_start(s))));
	return DirectFunctionCall1(uuid_in, CStringGetDatum(s));
}

char *
sg_uuid_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	return sg_uuid_out(PG_GETARG_DATUM(argno));
}

void
sg_json_append_array(StringInfo buf, ArrayType *arr, const char *name)
{
	Oid			elemtype = ARR_ELEMTYPE(arr);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	Assert(elemtype == TEXTOID || elemtype == UUIDOID);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name)));
	if (elemtype == UUIDOID)
		deconstruct_array(arr, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR, &elems, &nulls, &n);
	else
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	appendStringInfoChar(buf, '[');
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", name)));
		if (i > 0)
			appendStringInfoString(buf, ", ");
		sg_json_append_string(buf, elemtype == UUIDOID ? sg_uuid_out(elems[i])
							  : TextDatumGetCString(elems[i]));
	}
	appendStringInfoChar(buf, ']');
}

/* Says which request of an order an error is about. */
static void
sg_request_error_context(void *arg)
{
	errcontext("request %d of the order", *(int *) arg);
}

/* Field "key" of a request as a C string; raises unless it is a string. */
static char *
sg_field_string(const char *key, JsonbValue *v)
{
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must be a string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Unknown keys are refused: a misspelt option must not be ignored.  So is a
 * null value, which the API refuses: leave the key out instead.
 */
static void
sg_check_request_keys(JsonbContainer *obj)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	kv;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	while ((tok = JsonbIteratorNext(&it, &kv, true)) != WJB_DONE)
	{
		int			i;

		if (tok == WJB_VALUE && kv.type == jbvNull && key != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("\"%s\" must not be null", key),
					 errhint("Leave the key out instead.")));
		if (tok != WJB_KEY)
			continue;
		key = sg_quote_start_len(kv.val.string.val, kv.val.string.len);
		for (i = 0; sg_request_keys[i] != NULL; i++)
		{
			if (strcmp(key, sg_request_keys[i]) == 0)
				break;
		}
		if (sg_request_keys[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%s\" in request", key),
					 errdetail("A request has the keys %s.",
							   sg_join(sg_request_keys, sg_list_length(sg_request_keys),
									   " and "))));
	}
}

static const SgRequestType *
sg_check_request_type(JsonbContainer *obj)
{
	JsonbValue *v = sg_jsonb_get(obj, "type");
	const SgRequestType *rt;
	char	   *type;

	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request has no \"type\""),
				 errdetail("Known types: %s.", sg_type_names(NULL, ", "))));
	type = sg_field_string("type", v);
	rt = sg_request_type(type);
	if (rt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown request type \"%s\"", sg_quote_start(type)),
				 errdetail("Known types: %s.", sg_type_names(NULL, ", "))));
	return rt;
}

/*
 * "prms": a non-empty array of distinct PRMs, at most SG_MAX_PRMS, or absent
 * with a consent.
 */
static void
sg_check_request_prms(JsonbContainer *obj, const SgRequestType *rt, bool have_consent)
{
	JsonbValue *v = sg_jsonb_get(obj, "prms");
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;
	int			count = 0;
	int			size;
	char	  **prms;

	if (v == NULL)
	{
		if (!have_consent)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s request has no \"prms\"", rt->name),
					 errhint("List the PRMs, or pass the consent_id they come from.")));
		return;
	}
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"prms\" must be an array of strings")));
	size = JsonContainerSize(v->val.binary.data);
	if (size > SG_MAX_PRMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s request has too many PRMs", rt->name),
				 errdetail("It has %d; the limit is %d.", size, SG_MAX_PRMS)));
	prms = palloc(sizeof(char *) * Max(size, 1));
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (elem.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"prms\" must be an array of strings")));
		Assert(count < size);
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
					 errmsg("PRM %s is listed twice in the %s request", prms[count], rt->name),
					 errhint("List each PRM once.")));
	}
}

static void
sg_check_request_direction(JsonbContainer *obj, const SgRequestType *rt)
{
	JsonbValue *v = sg_jsonb_get(obj, "direction");
	char	   *dir;
	int			i;

	if (v == NULL)
		return;
	dir = sg_field_string("direction", v);
	if (rt->directions == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s request takes no direction", rt->name)));
	for (i = 0; rt->directions[i] != NULL; i++)
	{
		if (strcmp(dir, rt->directions[i]) == 0)
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid direction \"%s\" for a request of type %s", sg_quote_start(dir), rt->name),
			 errdetail("Allowed: %s.", sg_join(rt->directions, i, ", "))));
}

/* "since" or "until": sets *ts and returns true if present. */
static bool
sg_check_request_date(JsonbContainer *obj, const SgRequestType *rt,
					  const char *key, TimestampTz *ts)
{
	JsonbValue *v = sg_jsonb_get(obj, key);

	if (v == NULL)
		return false;
	if (!rt->dates)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s request takes no \"%s\"", rt->name, key)));
	*ts = sg_parse_api_datetime(sg_field_string(key, v), key);
	return true;
}

static void
sg_check_request_retry_option(JsonbContainer *obj, const SgRequestType *rt)
{
	JsonbValue *v = sg_jsonb_get(obj, "enedisRetryAfterLoadcurveActivation");

	if (v == NULL)
		return;
	if (v->type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"enedisRetryAfterLoadcurveActivation\" must be a boolean")));
	if (!rt->retry_option && v->val.boolean)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s request cannot retry after load-curve activation", rt->name),
				 errdetail("Only %s requests take enedisRetryAfterLoadcurveActivation.",
						   sg_type_names(sg_takes_retry_option, " and "))));
}

/*
 * A period longer than the API keeps, or than one request of the type may
 * cover, is refused: it would be billed for data that cannot come.  Only the
 * length is checked here, not how old "since" is: that depends on the day
 * the order is placed, and the API answers for it (switchgrid_sync() checks
 * it, as it orders relative to today).  A Paris day may be 25 hours long, so
 * a span of N days is allowed one hour more.
 */
static void
sg_check_request_span(const SgRequestType *rt, TimestampTz since, TimestampTz until)
{
	Interval	limit;
	TimestampTz most;
	const char *unit;
	int			n;

	if (rt->max_span_days > 0)
	{
		n = rt->max_span_days;
		unit = n == 1 ? "day" : "days";
		memset(&limit, 0, sizeof(limit));
		limit.day = n;
		limit.time = USECS_PER_HOUR;
	}
	else if (rt->history_months > 0)
	{
		n = rt->history_months;
		unit = n == 1 ? "month" : "months";
		memset(&limit, 0, sizeof(limit));
		limit.month = n;
		limit.day = 1;
	}
	else
		return;
	most = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
												   TimestampTzGetDatum(since),
												   PointerGetDatum(&limit)));
	if (until > most)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s request covers too long a period", rt->name),
				 rt->max_span_days > 0
				 ? errdetail("One %s request covers at most %d %s.", rt->name, n, unit)
				 : errdetail("%s data goes back %d %s at most.", rt->name, n, unit),
				 errhint("Order a shorter period, or split it into several requests.")));
}

/* Validates one request object; see sg_validate_requests(). */
static void
sg_validate_request(JsonbContainer *obj, bool have_consent)
{
	const SgRequestType *rt;
	TimestampTz since = 0,
				until = 0;
	bool		has_since,
				has_until;

	if (!JsonContainerIsObject(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a request must be a JSON object")));
	sg_check_request_keys(obj);
	rt = sg_check_request_type(obj);
	sg_check_request_prms(obj, rt, have_consent);
	sg_check_request_direction(obj, rt);
	has_since = sg_check_request_date(obj, rt, "since", &since);
	has_until = sg_check_request_date(obj, rt, "until", &until);
	if (has_since && has_until && since >= until)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"since\" must be earlier than \"until\"")));
	if (has_since)
		sg_check_request_span(rt, since,
							  has_until ? until : GetCurrentTransactionStartTimestamp());
	sg_check_request_retry_option(obj, rt);
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
		appendStringInfoString(&buf, ", \"prms\": ");
		sg_json_append_array(&buf, PG_GETARG_ARRAYTYPE_P(1), "prms");
	}
	if (!PG_ARGISNULL(2))
	{
		appendStringInfoString(&buf, ", \"direction\": ");
		sg_json_append_string(&buf, sg_text_arg_capped(fcinfo, 2, "direction", SG_MAX_WORD_CHARS));
	}
	if (!PG_ARGISNULL(3))
	{
		appendStringInfoString(&buf, ", \"since\": ");
		sg_json_append_string(&buf, sg_format_api_timestamp(PG_GETARG_TIMESTAMPTZ(3), "since"));
	}
	if (!PG_ARGISNULL(4))
	{
		appendStringInfoString(&buf, ", \"until\": ");
		sg_json_append_string(&buf, sg_format_api_timestamp(PG_GETARG_TIMESTAMPTZ(4), "until"));
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

PG_FUNCTION_INFO_V1(switchgrid_request_types);

/*
 * switchgrid.request_types() RETURNS TABLE(type, dataset, directions,
 *		dated, history_months, max_span_days, sync)
 *
 * sg_request_types[] as rows, so that switchgrid_sync() and the docs read
 * the same limits as switchgrid_order() checks.
 */
Datum
switchgrid_request_types(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	size_t		i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < lengthof(sg_request_types); i++)
	{
		const SgRequestType *rt = &sg_request_types[i];
		const char *dataset = sg_sync_dataset_name(rt->parser);
		Datum		values[7];
		bool		nulls[7] = {false};

		values[0] = CStringGetTextDatum(rt->name);
		if (dataset)
			values[1] = CStringGetTextDatum(dataset);
		else
			nulls[1] = true;
		if (rt->directions)
		{
			int			n = sg_list_length(rt->directions);
			Datum	   *d = palloc(sizeof(Datum) * n);
			int			j;

			for (j = 0; j < n; j++)
				d[j] = CStringGetTextDatum(rt->directions[j]);
			values[2] = PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
		}
		else
			nulls[2] = true;
		values[3] = BoolGetDatum(rt->dates);
		values[4] = Int32GetDatum(rt->history_months);
		values[5] = Int32GetDatum(rt->max_span_days);
		values[6] = BoolGetDatum(rt->sync);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
