/*-------------------------------------------------------------------------
 * api.c
 *	  The SQL functions that map one-to-one onto Switchgrid endpoints:
 *	  contract search, Asks, Orders and the raw data behind a dataUrl.
 *
 * Each function checks all of its input before the first HTTP call, so a
 * bad argument never costs a billable request.  Load curves live in
 * loadcurve.c.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "budget.h"
#include "compat.h"
#include "guc.h"
#include "http.h"
#include "input.h"
#include "json_util.h"
#include "request.h"
#include "store.h"
#include "worker.h"

#define SG_ASK_PAGE_SIZE 100
#define SG_ASK_MAX_PAGES 10000		/* a bound when the server's answers disagree */

static const char *const sg_purposes[] = {
	"ENERGY_PERFORMANCE_STUDY", "SOLAR_INSTALLATION_SIZING", "DEMAND_RESPONSE",
	"ENERGY_BROKERAGE", "VEHICLE_CHARGE_DETECTION",
};

static const char *const sg_ask_statuses[] = {
	"CREATED", "PENDING_ADDRESS_CHECK", "ADDRESS_CHECK_FAILED",
	"PREPARING_CONSENT_COLLECTION", "PENDING_USER_ACTION", "ACCEPTED",
};

static bool
sg_in_list(const char *value, const char *const *list, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		if (strcmp(value, list[i]) == 0)
			return true;
	}
	return false;
}

/*
 * A text argument as a C string, or NULL if it is NULL or blank; more than
 * "maxchars" characters raise 22023.
 */
static char *
sg_text_arg(FunctionCallInfo fcinfo, int argno, const char *argname, int maxchars)
{
	char	   *s;
	const char *p;

	s = sg_text_arg_capped(fcinfo, argno, argname, maxchars);
	if (s == NULL)
		return NULL;
	for (p = s; *p; p++)
	{
		if (!isspace((unsigned char) *p))
			return s;
	}
	return NULL;
}

/* Query-string value: UTF-8, percent-encoded. */
static char *
sg_query_value(const char *s)
{
	return sg_url_escape(pg_server_to_any(s, (int) strlen(s), PG_UTF8));
}

static Datum
sg_timestamptz_datum(const char *s)
{
	return TimestampTzGetDatum(sg_api_timestamp_in(s));
}

/*
 * Refuses a billable or destructive call where its result could not be
 * recorded: on a standby or in a read-only transaction.
 */
static void
sg_check_writable(const char *cmdname)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute %s during recovery", cmdname),
				 errdetail("Its result could not be recorded on a standby.")));
	PreventCommandIfReadOnly(cmdname);
}

/* How a JSON field becomes a column of a result row. */
typedef enum SgColumnKind
{
	SG_COL_TEXT,
	SG_COL_UUID,
	SG_COL_TIMESTAMPTZ,
	SG_COL_JSONB
} SgColumnKind;

/*
 * The input function of a column applied to a field of an answer; a value
 * it refuses is the server's fault, so it raises 08P01 naming "what".
 */
static Datum
sg_field_value(const char *s, SgColumnKind kind, const char *key, const char *what)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile Datum d = (Datum) 0;

	PG_TRY();
	{
		if (kind == SG_COL_UUID)
			d = sg_uuid_in(s);
		else
			d = sg_timestamptz_datum(s);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected response from Switchgrid for %s", what),
				 errdetail("Field \"%s\" is not a valid %s.", key,
						   kind == SG_COL_UUID ? "uuid" : "timestamp")));
	}
	PG_END_TRY();
	return d;
}

/* Sets *value from field "key" of an object; *isnull if absent or null. */
static void
sg_field_to_column(JsonbContainer *obj, const char *key, SgColumnKind kind,
				   Datum *value, bool *isnull, const char *what)
{
	char	   *s;
	Jsonb	   *j;

	*isnull = true;
	if (kind == SG_COL_JSONB)
	{
		j = sg_jsonb_get_jsonb(obj, key);
		if (j != NULL)
		{
			*value = JsonbPGetDatum(j);
			*isnull = false;
		}
		return;
	}
	s = sg_jsonb_get_string(obj, key);
	if (s == NULL)
		return;
	switch (kind)
	{
		case SG_COL_TEXT:
			*value = CStringGetTextDatum(s);
			break;
		case SG_COL_UUID:
		case SG_COL_TIMESTAMPTZ:
			*value = sg_field_value(s, kind, key, what);
			break;
		case SG_COL_JSONB:
			break;
	}
	*isnull = false;
}

/* Calls the API and returns the body as jsonb. */
static Jsonb *
sg_call_jsonb(SgHttpMethod method, const char *path, const char *query,
			  const char *body, int flags, const char *what)
{
	SgHttpResponse *resp = sg_api_call(method, path, query, body, flags, what);

	return sg_response_to_jsonb(resp, what);
}

static void
sg_expect_object(Jsonb *j, const char *what)
{
	if (JB_ROOT_IS_SCALAR(j) || !JB_ROOT_IS_OBJECT(j))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected response from Switchgrid for %s", what),
				 errdetail("Expected a JSON object.")));
}

/* The array under "key" of an object, or NULL if it is absent. */
static JsonbContainer *
sg_get_array(JsonbContainer *obj, const char *key, const char *what)
{
	JsonbValue *v = sg_jsonb_get(obj, key);

	if (v == NULL)
		return NULL;
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected response from Switchgrid for %s", what),
				 errdetail("\"%s\" is not an array.", key)));
	return v->val.binary.data;
}

/* ----------------------------------------------------------------
 * Contract search
 * ----------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(switchgrid_search_contract);

/*
 * switchgrid_search_contract(name text, address text DEFAULT NULL,
 *							  prm text DEFAULT NULL)
 *	 RETURNS TABLE(contract_id uuid, prm text, holder text, category text,
 *				   address jsonb)
 */
Datum
switchgrid_search_contract(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = sg_text_arg(fcinfo, 0, "name", SG_MAX_NAME_CHARS);
	char	   *address = sg_text_arg(fcinfo, 1, "address", SG_MAX_ADDRESS_CHARS);
	char	   *prm = sg_text_arg(fcinfo, 2, "prm", SG_MAX_WORD_CHARS);
	StringInfoData query;
	Jsonb	   *result;
	JsonbContainer *results;
	const char *what = "contract search";
	int			i,
				n;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be empty")));
	if (pg_mbstrlen(name) < 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("name \"%s\" is too short", name),
				 errdetail("The holder's name needs at least 3 characters.")));
	if (address == NULL && prm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("either address or prm is required")));
	if (prm != NULL)
		sg_check_prm(prm);
	if (address != NULL)
	{
		const char *p;
		int			run = 0;
		bool		postal = false;

		for (p = address; *p && !postal; p++)
		{
			run = (*p >= '0' && *p <= '9') ? run + 1 : 0;
			postal = (run == 5 && !(p[1] >= '0' && p[1] <= '9'));
		}
		if (!postal)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("address \"%s\" has no postal code", sg_quote_start(address)),
					 errdetail("An address needs a street and a 5-digit postal code, e.g. \"1 rue de la Paix 75002 Paris\".")));
	}

	InitMaterializedSRF(fcinfo, 0);

	initStringInfo(&query);
	appendStringInfo(&query, "name=%s", sg_query_value(name));
	if (address != NULL)
		appendStringInfo(&query, "&address=%s", sg_query_value(address));
	if (prm != NULL)
		appendStringInfo(&query, "&prm=%s", prm);

	result = sg_call_jsonb(SG_HTTP_GET, "/search_contract", query.data, NULL, 0, what);
	sg_expect_object(result, what);
	results = sg_get_array(&result->root, "results", what);
	n = results ? JsonContainerSize(results) : 0;

	for (i = 0; i < n; i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(results, i);
		JsonbContainer *c;
		Datum		values[5];
		bool		nulls[5];

		if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
			continue;
		c = item->val.binary.data;

		sg_field_to_column(c, "id", SG_COL_UUID, &values[0], &nulls[0], what);
		sg_field_to_column(c, "prm", SG_COL_TEXT, &values[1], &nulls[1], what);
		sg_field_to_column(c, "nomClientFinalOuDenominationSociale", SG_COL_TEXT,
						   &values[2], &nulls[2], what);
		sg_field_to_column(c, "categorieClientFinalCode", SG_COL_TEXT, &values[3], &nulls[3], what);
		sg_field_to_column(c, "adresseInstallationNormalisee", SG_COL_JSONB,
						   &values[4], &nulls[4], what);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Asks
 * ----------------------------------------------------------------
 */

/* The array under "key" of an Ask body, or NULL if absent. */
static JsonbContainer *
sg_ask_array(JsonbContainer *root, const char *key, bool nonempty)
{
	JsonbValue *v = sg_jsonb_get(root, key);

	if (v == NULL)
		return NULL;
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		(nonempty && JsonContainerSize(v->val.binary.data) == 0))
		return NULL;
	return v->val.binary.data;
}

/* A string element or field as a C string, or NULL if it is not a string. */
static char *
sg_ask_string(JsonbValue *v)
{
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* "electricityContracts": contract ids, or objects with a PRM. */
static void
sg_check_ask_contracts(JsonbContainer *root)
{
	JsonbContainer *contracts = sg_ask_array(root, "electricityContracts", true);
	int			i,
				n;

	if (contracts == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an Ask needs a non-empty \"electricityContracts\" array"),
				 errhint("Use the contract_id values returned by switchgrid_search_contract().")));
	n = JsonContainerSize(contracts);
	if (n > SG_MAX_CONTRACTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("an Ask has too many electricity contracts"),
				 errdetail("It has %d; the limit is %d.", n, SG_MAX_CONTRACTS)));
	for (i = 0; i < n; i++)
	{
		JsonbValue *c = getIthJsonbValueFromContainer(contracts, i);

		if (c->type == jbvString)
			(void) sg_uuid_in(sg_ask_string(c));	/* raises 22P02 if not a uuid */
		else if (c->type == jbvBinary && JsonContainerIsObject(c->val.binary.data))
		{
			char	   *prm = sg_jsonb_get_string(c->val.binary.data, "prm");

			if (prm == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("an electricity contract object needs a \"prm\"")));
			sg_check_prm(prm);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each electricity contract must be a contract id or an object")));
	}
}

/* "signer": an object with a first and last name, an optional genre and email. */
static void
sg_check_ask_signer(JsonbContainer *root)
{
	static const char *const required[] = {"firstName", "lastName"};
	JsonbValue *v = sg_jsonb_get(root, "signer");
	JsonbContainer *signer;
	char	   *genre;
	char	   *email;
	int			i;

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an Ask needs a \"signer\" object")));
	signer = v->val.binary.data;
	for (i = 0; i < (int) lengthof(required); i++)
	{
		char	   *s = sg_jsonb_get_string(signer, required[i]);

		if (s == NULL || s[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the signer needs a \"%s\"", required[i])));
	}
	genre = sg_jsonb_get_string(signer, "genre");
	if (genre != NULL && strcmp(genre, "M") != 0 && strcmp(genre, "F") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signer genre \"%s\"", sg_quote_start(genre)),
				 errdetail("Allowed: M, F.")));
	email = sg_jsonb_get_string(signer, "email");
	if (email != NULL && strchr(email, '@') == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid signer email \"%s\"", sg_quote_start(email))));
}

/* "purposes": an array of the purposes the API knows. */
static void
sg_check_ask_purposes(JsonbContainer *root)
{
	JsonbContainer *purposes;
	int			i,
				n;

	if (sg_jsonb_get(root, "purposes") == NULL)
		return;
	purposes = sg_ask_array(root, "purposes", false);
	if (purposes == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"purposes\" must be an array")));
	n = JsonContainerSize(purposes);
	if (n > SG_MAX_PURPOSES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("an Ask has too many purposes"),
				 errdetail("It has %d; the limit is %d.", n, SG_MAX_PURPOSES)));
	for (i = 0; i < n; i++)
	{
		char	   *s = sg_ask_string(getIthJsonbValueFromContainer(purposes, i));

		if (s == NULL || !sg_in_list(s, sg_purposes, lengthof(sg_purposes)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 s ? errmsg("invalid purpose \"%s\"", sg_quote_start(s)) : errmsg("invalid purpose (not a string)"),
					 errdetail("Allowed: ENERGY_PERFORMANCE_STUDY, SOLAR_INSTALLATION_SIZING, DEMAND_RESPONSE, ENERGY_BROKERAGE, VEHICLE_CHARGE_DETECTION.")));
	}
}

/* Whether "d" is a consent duration the API takes: "1 day" to "20 years". */
static bool
sg_consent_duration_ok(const char *d)
{
	static const struct
	{
		const char *one;
		const char *many;
		int			max;
	}			units[] = {
		{"day", "days", 6}, {"week", "weeks", 4}, {"month", "months", 6}, {"year", "years", 20},
	};
	int			num;
	char		unit[16];
	char		extra;
	size_t		i;

	if (sscanf(d, "%d %15s%c", &num, unit, &extra) != 2 || num < 1 ||
		strspn(d, "0123456789") != (size_t) snprintf(NULL, 0, "%d", num))
		return false;
	for (i = 0; i < lengthof(units); i++)
	{
		if (strcmp(unit, num > 1 ? units[i].many : units[i].one) == 0)
			return num <= units[i].max;
	}
	return false;
}

/* "consentDuration", if present. */
static void
sg_check_ask_duration(JsonbContainer *root)
{
	JsonbValue *v = sg_jsonb_get(root, "consentDuration");
	char	   *d;

	if (v == NULL)
		return;
	d = sg_ask_string(v);
	if (d == NULL || !sg_consent_duration_ok(d))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 d ? errmsg("invalid consent duration \"%s\"", sg_quote_start(d)) : errmsg("invalid consent duration (not a string)"),
				 errdetail("Use \"1 day\" to \"6 days\", \"1 week\" to \"4 weeks\", \"1 month\" to \"6 months\" or \"1 year\" to \"20 years\".")));
}

/*
 * Checks an Ask body before it is sent: the guide's shape, with the
 * contracts and the signer present.  Fields the guide does not describe are
 * passed through untouched.
 */
static void
sg_check_ask_body(Jsonb *body)
{
	if (JB_ROOT_IS_SCALAR(body) || !JB_ROOT_IS_OBJECT(body))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an Ask body must be a JSON object")));
	sg_check_ask_contracts(&body->root);
	sg_check_ask_signer(&body->root);
	sg_check_ask_purposes(&body->root);
	sg_check_ask_duration(&body->root);
}

static Datum
sg_post_ask(Jsonb *body)
{
	char	   *text;
	Jsonb	   *ask;

	sg_check_ask_body(body);
	sg_check_writable("switchgrid_ask()");
	text = JsonbToCString(NULL, &body->root, VARSIZE(body));
	text = pg_server_to_any(text, (int) strlen(text), PG_UTF8);
	ask = sg_call_jsonb(SG_HTTP_POST, "/ask", NULL, text, SG_HTTP_TEST_ENV, "a new Ask");
	sg_expect_object(ask, "a new Ask");
	sg_store_ask(ask, 2.0, sg_test_env ? 1 : 0);
	sg_worker_wake_at_commit();
	PG_RETURN_JSONB_P(ask);
}

PG_FUNCTION_INFO_V1(switchgrid_ask_body);

/* switchgrid_ask(body jsonb) RETURNS jsonb */
Datum
switchgrid_ask_body(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the Ask body must not be null")));
	sg_check_jsonb_arg(fcinfo, 0, "the Ask body", SG_MAX_JSON_BYTES);
	return sg_post_ask(PG_GETARG_JSONB_P(0));
}

PG_FUNCTION_INFO_V1(switchgrid_ask);

/*
 * switchgrid_ask(contract_ids uuid[], signer jsonb, purposes text[] DEFAULT
 *				  NULL, consent_duration text DEFAULT NULL, scopes jsonb
 *				  DEFAULT NULL) RETURNS jsonb
 */
Datum
switchgrid_ask(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("contract_ids must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("signer must not be null")));
	sg_check_array_arg(fcinfo, 0, "contract_ids", SG_MAX_CONTRACTS);
	if (ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(0)), ARR_DIMS(PG_GETARG_ARRAYTYPE_P(0))) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("contract_ids must not be empty"),
				 errhint("Use the contract_id values returned by switchgrid_search_contract().")));
	sg_check_jsonb_arg(fcinfo, 1, "signer", SG_MAX_JSON_BYTES);
	sg_check_array_arg(fcinfo, 2, "purposes", SG_MAX_PURPOSES);
	sg_check_jsonb_arg(fcinfo, 4, "scopes", SG_MAX_JSON_BYTES);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"electricityContracts\": ");
	sg_json_append_array(&buf, PG_GETARG_ARRAYTYPE_P(0), "contract_ids");
	appendStringInfoString(&buf, ", \"signer\": ");
	{
		Jsonb	   *signer = PG_GETARG_JSONB_P(1);

		(void) JsonbToCString(&buf, &signer->root, VARSIZE(signer));
	}
	if (!PG_ARGISNULL(2))
	{
		appendStringInfoString(&buf, ", \"purposes\": ");
		sg_json_append_array(&buf, PG_GETARG_ARRAYTYPE_P(2), "purposes");
	}
	if (!PG_ARGISNULL(3))
	{
		appendStringInfoString(&buf, ", \"consentDuration\": ");
		sg_json_append_string(&buf, sg_text_arg_capped(fcinfo, 3, "consent_duration",
													   SG_MAX_WORD_CHARS));
	}
	if (!PG_ARGISNULL(4))
	{
		Jsonb	   *scopes = PG_GETARG_JSONB_P(4);

		if (JB_ROOT_IS_SCALAR(scopes) || !JB_ROOT_IS_ARRAY(scopes))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("scopes must be a JSON array"),
					 errhint("For example '[{\"service\": \"ENEDIS_RAW_API\", \"id\": \"DETAILS_CONTRACTUELS\"}]'.")));
		appendStringInfoString(&buf, ", \"scopes\": ");
		(void) JsonbToCString(&buf, &scopes->root, VARSIZE(scopes));
	}
	appendStringInfoChar(&buf, '}');

	return sg_post_ask(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data))));
}

PG_FUNCTION_INFO_V1(switchgrid_ask_status);

/* switchgrid_ask_status(ask_id uuid) RETURNS jsonb */
Datum
switchgrid_ask_status(PG_FUNCTION_ARGS)
{
	char	   *id = sg_uuid_arg(fcinfo, 0, "ask_id");
	char	   *what = psprintf("Ask %s", id);
	Jsonb	   *ask;

	ask = sg_response_for_id(sg_api_call(SG_HTTP_GET, psprintf("/ask/%s", id), NULL, NULL,
										 SG_HTTP_TEST_ENV, what), what, id);
	sg_expect_object(ask, what);
	sg_store_ask(ask, 5.0, -1);
	PG_RETURN_JSONB_P(ask);
}

PG_FUNCTION_INFO_V1(switchgrid_cancel_ask);

/* switchgrid_cancel_ask(ask_id uuid) RETURNS void */
Datum
switchgrid_cancel_ask(PG_FUNCTION_ARGS)
{
	char	   *id = sg_uuid_arg(fcinfo, 0, "ask_id");

	Oid			types[1] = {UUIDOID};
	Datum		values[1];

	sg_check_writable("switchgrid_cancel_ask()");
	(void) sg_api_call(SG_HTTP_DELETE, psprintf("/ask/%s", id), NULL, NULL,
					   SG_HTTP_TEST_ENV, psprintf("Ask %s", id));
	values[0] = PG_GETARG_DATUM(0);
	(void) sg_spi_as_owner("SELECT switchgrid.record_ask_cancelled($1)", 1, types, values,
						   NULL, NULL, NULL);
	PG_RETURN_VOID();
}

/*
 * Checks a GET /ask filter: a comma list of values, each optionally
 * prefixed with '!', each accepted by "check".  Returns it escaped.
 */
static char *
sg_check_filter(const char *filter, const char *name, void (*check) (const char *))
{
	char	   *copy = pstrdup(filter);
	char	   *tok = copy;

	if (strspn(filter, ", ") == strlen(filter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("empty %s filter", name)));
	/* every element of the comma list, empty ones included ("A,,B", "A,") */
	for (;;)
	{
		char	   *comma = strchr(tok, ',');

		if (comma)
			*comma = '\0';
		while (isspace((unsigned char) *tok))
			tok++;
		if (*tok == '!')
			tok++;
		if (*tok == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("empty element in %s filter \"%s\"", name, sg_quote_start(filter)),
					 errhint("Separate the values with single commas, without one at the end.")));
		check(tok);
		if (comma == NULL)
			break;
		tok = comma + 1;
	}
	return sg_url_escape(filter);
}

static void
sg_check_ask_status(const char *s)
{
	if (!sg_in_list(s, sg_ask_statuses, lengthof(sg_ask_statuses)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid Ask status \"%s\"", sg_quote_start(s)),
				 errdetail("Allowed: CREATED, PENDING_ADDRESS_CHECK, ADDRESS_CHECK_FAILED, PREPARING_CONSENT_COLLECTION, PENDING_USER_ACTION, ACCEPTED, each optionally prefixed with \"!\" to exclude it.")));
}

/* The PRMs of an Ask: from its contracts, else from its consentIds. */
static Datum
sg_ask_prms(JsonbContainer *ask, bool *isnull)
{
	JsonbValue *v = sg_jsonb_get(ask, "contracts");
	ArrayBuildState *abs = NULL;

	if (v != NULL && v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
	{
		int			n = JsonContainerSize(v->val.binary.data);
		int			i;

		for (i = 0; i < n; i++)
		{
			JsonbValue *c = getIthJsonbValueFromContainer(v->val.binary.data, i);
			char	   *prm;

			if (c->type != jbvBinary)
				continue;
			prm = sg_jsonb_get_string(c->val.binary.data, "prm");
			if (prm != NULL)
				abs = accumArrayResult(abs, CStringGetTextDatum(prm), false,
									   TEXTOID, CurrentMemoryContext);
		}
	}
	if (abs == NULL)
	{
		v = sg_jsonb_get(ask, "consentIds");
		if (v != NULL && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		{
			JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
			JsonbValue	kv;
			JsonbIteratorToken tok;

			while ((tok = JsonbIteratorNext(&it, &kv, true)) != WJB_DONE)
			{
				if (tok == WJB_KEY)
					abs = accumArrayResult(abs,
										   PointerGetDatum(cstring_to_text_with_len(kv.val.string.val,
																					kv.val.string.len)),
										   false, TEXTOID, CurrentMemoryContext);
			}
		}
	}
	*isnull = (abs == NULL);
	return abs ? makeArrayResult(abs, CurrentMemoryContext) : (Datum) 0;
}

PG_FUNCTION_INFO_V1(switchgrid_asks);

/*
 * switchgrid_asks(status text DEFAULT NULL, prm text DEFAULT NULL)
 *	 RETURNS TABLE(ask_id uuid, status text, created_at timestamptz,
 *				   accepted_at timestamptz, prms text[], consent_ids jsonb,
 *				   ask jsonb)
 *
 * Follows skip/limit paging until every Ask is returned.
 */
Datum
switchgrid_asks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	/* a blank filter is refused (by sg_check_filter()), not taken as none */
	char	   *status = sg_text_arg_capped(fcinfo, 0, "status", SG_MAX_FILTER_CHARS);
	char	   *prm = sg_text_arg_capped(fcinfo, 1, "prm", SG_MAX_FILTER_CHARS);
	char	   *filters;
	int64		skip = 0;
	int			pages;
	char	   *prev_first = NULL;
	MemoryContext pagecxt;
	MemoryContext oldcxt;

	filters = psprintf("%s%s%s%s",
					   status ? "&status=" : "",
					   status ? sg_check_filter(status, "status", sg_check_ask_status) : "",
					   prm ? "&prm=" : "",
					   prm ? sg_check_filter(prm, "prm", sg_check_prm) : "");

	InitMaterializedSRF(fcinfo, 0);

	pagecxt = AllocSetContextCreate(CurrentMemoryContext, "switchgrid ask page",
									ALLOCSET_DEFAULT_SIZES);
	for (pages = 1;; pages++)
	{
		Jsonb	   *page;
		JsonbContainer *items;
		JsonbValue *total;
		bool		has_total;
		int64		total_n = 0;
		char	   *first = NULL;
		int			n,
					i;
		const char *what = "Ask list";

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(pagecxt);
		page = sg_call_jsonb(SG_HTTP_GET, "/ask",
							 psprintf("skip=" INT64_FORMAT "&limit=%d&orderBy=createdAt:asc%s",
									  skip, SG_ASK_PAGE_SIZE, filters),
							 NULL, SG_HTTP_TEST_ENV, what);
		sg_expect_object(page, what);
		items = sg_get_array(&page->root, "items", what);
		n = items ? JsonContainerSize(items) : 0;

		for (i = 0; i < n; i++)
		{
			JsonbValue *item = getIthJsonbValueFromContainer(items, i);
			JsonbContainer *c;
			Datum		values[7];
			bool		nulls[7];
			Jsonb	   *j;

			if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
				continue;
			c = item->val.binary.data;
			if (first == NULL)
				first = sg_jsonb_get_string(c, "id");

			sg_field_to_column(c, "id", SG_COL_UUID, &values[0], &nulls[0], what);
			sg_field_to_column(c, "status", SG_COL_TEXT, &values[1], &nulls[1], what);
			sg_field_to_column(c, "createdAt", SG_COL_TIMESTAMPTZ, &values[2], &nulls[2], what);
			sg_field_to_column(c, "acceptedAt", SG_COL_TIMESTAMPTZ, &values[3], &nulls[3], what);
			values[4] = sg_ask_prms(c, &nulls[4]);
			sg_field_to_column(c, "consentIds", SG_COL_JSONB, &values[5], &nulls[5], what);
			nulls[6] = false;
			j = JsonbValueToJsonb(item);
			values[6] = JsonbPGetDatum(j);
			if (!nulls[0])
				sg_store_ask(j, 5.0, -1);

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}

		skip += n;
		total = sg_jsonb_get(&page->root, "totalItemsCount");
		has_total = total != NULL && total->type == jbvNumeric;
		if (has_total)
			total_n = DatumGetInt64(DirectFunctionCall1(numeric_int8,
														NumericGetDatum(total->val.numeric)));
		MemoryContextSwitchTo(oldcxt);

		/* a server that ignores "skip" would send the same page forever */
		if (first != NULL && prev_first != NULL && strcmp(first, prev_first) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("Switchgrid returned the same page of Asks twice"),
					 errdetail("Page %d starts with the Ask that began page %d.", pages, pages - 1)));

		/*
		 * The server decides the page size, and may send fewer items than
		 * the limit asked for: the listing ends when its total is reached,
		 * or on an empty page, never on a short page.
		 */
		if (n == 0 || (has_total && skip >= total_n))
			break;
		if (pages >= SG_ASK_MAX_PAGES)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("Switchgrid keeps returning Asks after %d pages", pages),
					 errdetail("The listing stops there in case the server ignores paging.")));
		if (prev_first != NULL)
			pfree(prev_first);
		prev_first = first ? pstrdup(first) : NULL;
		MemoryContextReset(pagecxt);
	}
	MemoryContextDelete(pagecxt);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Orders
 * ----------------------------------------------------------------
 */

/*
 * Says that no worker will follow an Order placed here, and what to do:
 * otherwise it would wait in switchgrid.pending forever, without a word.
 */
static void
sg_notice_unfollowed(void)
{
	const char *db = get_database_name(MyDatabaseId);

	ereport(NOTICE,
			(errmsg("no switchgrid worker follows orders in database \"%s\"",
					db ? db : "?"),
			 errdetail("The Order is recorded, but nothing will poll it or download its results."),
			 errhint("Call switchgrid_wait() to follow it from this session, or set switchgrid.database to this database and restart the server.")));
}

/*
 * What the answer to a POST /order that cannot be used leaves behind (see
 * SgLostAnswerHook): the Order may exist, and be billed.  If what arrived of
 * the body names it, it is logged and handed to the worker like the Order
 * of a rolled-back transaction (the error that follows rolls back).
 */
static void
sg_order_answer_lost(const char *body, size_t len)
{
	char	   *id = sg_json_lenient_top_level_uuid(body, len, "id");

	ereport(WARNING,
			(errmsg("Switchgrid may have placed the order"),
			 id ? errdetail("Its answer could not be read, but names order %s: the background worker will record it.", id)
			 : errdetail("Its answer could not be read, and names no order."),
			 errhint("Switchgrid bills an Order when it is placed: check for it before ordering again.")));
	if (id != NULL)
		sg_worker_order_placed(id);
}

/*
 * The 2xx answer to POST /order as a jsonb object; one that cannot be read
 * goes through sg_order_answer_lost() before its error propagates.
 */
static Jsonb *
sg_order_answer(SgHttpResponse *resp)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *volatile order = NULL;

	PG_TRY();
	{
		order = sg_response_to_jsonb(resp, "a new Order");
		sg_expect_object(order, "a new Order");
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		sg_order_answer_lost(resp->body, resp->len);
		ReThrowError(edata);
	}
	PG_END_TRY();
	return order;
}

/*
 * An Order id from an answer, in canonical form (palloc'd), or NULL if it
 * is not a uuid at all: only such an id is logged, recorded or handed over.
 */
static char *
sg_order_id(const char *s)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile Datum d = (Datum) 0;
	volatile bool ok = true;

	if (s == NULL)
		return NULL;
	PG_TRY();
	{
		d = sg_uuid_in(s);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok ? sg_uuid_out(d) : NULL;
}

PG_FUNCTION_INFO_V1(switchgrid_order);

/* switchgrid_order(requests jsonb, consent_id uuid DEFAULT NULL) RETURNS jsonb */
Datum
switchgrid_order(PG_FUNCTION_ARGS)
{
	char	   *requests;
	char	   *consent = NULL;
	char	   *id;
	StringInfoData body;
	SgHttpResponse *resp;
	Jsonb	   *order;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("requests must not be null")));
	sg_check_jsonb_arg(fcinfo, 0, "requests", SG_MAX_JSON_BYTES);
	requests = sg_validate_requests(PG_GETARG_JSONB_P(0), !PG_ARGISNULL(1));
	sg_check_writable("switchgrid_order()");

	initStringInfo(&body);
	appendStringInfoChar(&body, '{');
	if (!PG_ARGISNULL(1))
	{
		consent = sg_uuid_out(PG_GETARG_DATUM(1));
		appendStringInfo(&body, "\"consentId\": \"%s\", ", consent);
	}
	appendStringInfo(&body, "\"requests\": %s}", requests);

	/* within the budget, or an error before anything is billed */
	sg_budget_before_order();
	resp = sg_api_post("/order", pg_server_to_any(body.data, body.len, PG_UTF8),
					   0, "a new Order", sg_order_answer_lost);
	order = sg_order_answer(resp);
	id = sg_order_id(sg_jsonb_get_string(&order->root, "id"));
	if (id == NULL)
	{
		ereport(WARNING,
				(errmsg("Switchgrid may have placed the order"),
				 errdetail("Its answer names no order by a uuid, so the order cannot be followed."),
				 errhint("Switchgrid bills an Order when it is placed: check for it before ordering again.")));
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected response from Switchgrid for a new Order"),
				 errdetail("The answer has no \"id\" that is a uuid.")));
	}

	/* billed from here on: make sure the Order is never forgotten */
	sg_worker_order_placed(id);
	(void) sg_store_placed_order(order, requests, consent, 0.5, true, sg_test_env ? 1 : 0);
	if (!sg_worker_is_active())
		sg_notice_unfollowed();
	PG_RETURN_JSONB_P(order);
}

PG_FUNCTION_INFO_V1(switchgrid_order_status);

/* switchgrid_order_status(order_id uuid) RETURNS jsonb */
Datum
switchgrid_order_status(PG_FUNCTION_ARGS)
{
	char	   *id = sg_uuid_arg(fcinfo, 0, "order_id");
	char	   *what = psprintf("Order %s", id);
	Jsonb	   *order;

	order = sg_response_for_id(sg_api_call(SG_HTTP_GET, psprintf("/order/%s", id), NULL, NULL,
										   0, what), what, id);
	sg_expect_object(order, what);
	/* an answer that changes nothing is not written, and wakes nobody */
	if (sg_store_order(order, NULL, NULL, 1.0, true))
		sg_worker_wake_at_commit();
	PG_RETURN_JSONB_P(order);
}

/*
 * The raw Enedis JSON behind the dataUrl of a finished request of an Order,
 * looked up with GET /order/{id}; sets *rt to the request's type entry
 * (NULL for a type not in the request table).  "expect", if not
 * SG_PARSE_JSONB, is the parser the caller reads the data with: a request
 * of another type is refused before its data is downloaded.  The dataUrl is
 * fetched without the bearer token unless it points at the API itself.
 */
static Jsonb *
sg_request_data(const char *order_id, const char *request_id, SgDataParser expect,
				const char *caller, const SgRequestType **rtp)
{
	char	   *what = psprintf("Order %s", order_id);
	Jsonb	   *order;
	JsonbContainer *requests;
	JsonbContainer *req = NULL;
	char	   *status;
	const SgRequestType *rt;
	char	   *url;
	SgHttpResponse *resp;
	int			i,
				n;

	order = sg_response_for_id(sg_api_call(SG_HTTP_GET, psprintf("/order/%s", order_id), NULL,
										   NULL, 0, what), what, order_id);
	sg_expect_object(order, what);
	requests = sg_get_array(&order->root, "requests", what);
	n = requests ? JsonContainerSize(requests) : 0;
	for (i = 0; i < n && req == NULL; i++)
	{
		JsonbValue *r = getIthJsonbValueFromContainer(requests, i);
		char	   *id;

		if (r->type != jbvBinary)
			continue;
		id = sg_jsonb_get_string(r->val.binary.data, "id");
		if (id != NULL && pg_strcasecmp(id, request_id) == 0)
			req = r->val.binary.data;
	}
	if (req == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("request %s is not part of order %s", request_id, order_id)));

	status = sg_jsonb_get_string(req, "status");
	rt = sg_request_type(sg_jsonb_get_string(req, "type"));
	if (expect != SG_PARSE_JSONB && (rt == NULL || rt->parser != expect))
	{
		char	   *type = sg_jsonb_get_string(req, "type");

		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("request %s is of type %s", request_id, type ? type : "unknown"),
				 errdetail("%s() reads requests of type %s.", caller, sg_dataset_types(expect))));
	}
	*rtp = rt;
	if (status == NULL || strcmp(status, "SUCCESS") != 0)
	{
		char	   *err = sg_jsonb_get_string(req, "errorMessage");

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 (status != NULL && strcmp(status, "FAILED") == 0)
				 ? errmsg("request %s failed and will never have data", request_id)
				 : errmsg("request %s has no data yet", request_id),
				 err ? errdetail("Its status is %s: %s", status ? status : "unknown", err)
				 : errdetail("Its status is %s.", status ? status : "unknown"),
				 (status == NULL || strcmp(status, "FAILED") != 0)
				 ? errhint("Wait until switchgrid_order_status() shows it as SUCCESS.") : 0));
	}
	url = sg_jsonb_get_string(req, "dataUrl");
	if (url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("request %s has no dataUrl", request_id),
				 (rt != NULL && sg_parser_is_curve(rt->parser))
				 ? errhint("Read load curves with switchgrid_loadcurve().") : 0));

	resp = sg_fetch_url(url, psprintf("data of request %s", request_id));
	return sg_response_to_jsonb(resp, psprintf("data of request %s", request_id));
}

PG_FUNCTION_INFO_V1(switchgrid_data);

/* switchgrid_data(order_id uuid, request_id uuid) RETURNS jsonb */
Datum
switchgrid_data(PG_FUNCTION_ARGS)
{
	char	   *order_id = sg_uuid_arg(fcinfo, 0, "order_id");
	char	   *request_id = sg_uuid_arg(fcinfo, 1, "request_id");
	const SgRequestType *rt;

	PG_RETURN_JSONB_P(sg_request_data(order_id, request_id, SG_PARSE_JSONB,
									  "switchgrid_data", &rt));
}

/*
 * switchgrid_<dataset>(order_id uuid, request_id uuid) RETURNS TABLE(...)
 *
 * A finished request's payload as the rows its dataset's table would get,
 * stored nowhere: the owner's SQL reader switchgrid.<dataset>_rows(), the
 * one the store uses, turns it into rows.  The function's columns are the
 * reader's but the last (request_id).
 */
static Datum
sg_dataset_srf(FunctionCallInfo fcinfo, SgDataParser parser, const char *caller)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *order_id = sg_uuid_arg(fcinfo, 0, "order_id");
	char	   *request_id = sg_uuid_arg(fcinfo, 1, "request_id");
	const SgRequestType *rt;
	Jsonb	   *data;
	Oid			types[2] = {JSONBOID, UUIDOID};
	Datum		values[2];

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	data = sg_request_data(order_id, request_id, parser, caller, &rt);
	values[0] = JsonbPGetDatum(data);
	values[1] = sg_uuid_in(request_id);
	(void) sg_spi_rows_as_owner(psprintf("SELECT * FROM switchgrid.%s_rows($1, $2)",
										 sg_dataset_name(parser)),
								2, types, values, NULL, rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(switchgrid_daily_energy);
PG_FUNCTION_INFO_V1(switchgrid_max_power);
PG_FUNCTION_INFO_V1(switchgrid_indexes);
PG_FUNCTION_INFO_V1(switchgrid_billing);
PG_FUNCTION_INFO_V1(switchgrid_contracts);

Datum
switchgrid_daily_energy(PG_FUNCTION_ARGS)
{
	return sg_dataset_srf(fcinfo, SG_PARSE_DAILY_ENERGY, "switchgrid_daily_energy");
}

Datum
switchgrid_max_power(PG_FUNCTION_ARGS)
{
	return sg_dataset_srf(fcinfo, SG_PARSE_MAX_POWER, "switchgrid_max_power");
}

Datum
switchgrid_indexes(PG_FUNCTION_ARGS)
{
	return sg_dataset_srf(fcinfo, SG_PARSE_INDEXES, "switchgrid_indexes");
}

Datum
switchgrid_billing(PG_FUNCTION_ARGS)
{
	return sg_dataset_srf(fcinfo, SG_PARSE_BILLING, "switchgrid_billing");
}

Datum
switchgrid_contracts(PG_FUNCTION_ARGS)
{
	return sg_dataset_srf(fcinfo, SG_PARSE_CONTRACTS, "switchgrid_contracts");
}
