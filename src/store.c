/*-------------------------------------------------------------------------
 * store.c
 *	  Recording Asks, Orders and fetched data in the switchgrid.* tables.
 *
 * The logic of what a record means (upserts, state transitions, NOTIFY)
 * lives in the SQL functions of the extension script (switchgrid.record_*,
 * switchgrid.store_*), in one place for the SQL API and the worker.  This
 * file only calls them, as the extension's owner (owner.c).  It knows
 * nothing of HTTP or of the payloads' formats: it takes parsed values.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "json_util.h"
#include "owner.h"
#include "request.h"
#include "store.h"

#define SG_RECORD_DETAIL_MAX 200	/* bytes of a refused field's message kept */

static Datum
sg_interval_seconds(double s)
{
	return DirectFunctionCall3(interval_in,
							   CStringGetDatum(psprintf("%.3f seconds", s)),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* True if "v" is a JSON string in the canonical form of a uuid. */
static bool
sg_is_uuid_value(const JsonbValue *v)
{
	int			i;

	if (v == NULL || v->type != jbvString || v->val.string.len != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		char		c = v->val.string.val[i];

		if (i == 8 || i == 13 || i == 18 || i == 23 ? c != '-' : !isxdigit((unsigned char) c))
			return false;
	}
	return true;
}

/* True if the container is an object whose "id" is a uuid. */
static bool
sg_has_uuid_id(JsonbContainer *c)
{
	return JsonContainerIsObject(c) &&
		sg_is_uuid_value(getKeyJsonValueFromContainer(c, "id", 2, NULL));
}

/*
 * Raises a protocol violation unless an answer has the shape the record
 * functions rely on: an object with a uuid "id" and, for an Order, a
 * "requests" array (if any) of objects with uuid ids.  Without it, a
 * well-formed answer of the wrong shape would end in whatever constraint or
 * cast it happens to break.
 */
static void
sg_check_shape(Jsonb *j, const char *what, bool with_requests)
{
	bool		ok = !JB_ROOT_IS_SCALAR(j) && sg_has_uuid_id(&j->root);

	if (ok && with_requests)
	{
		JsonbValue *reqs = getKeyJsonValueFromContainer(&j->root, "requests", 8, NULL);

		if (reqs != NULL && reqs->type != jbvNull)
		{
			ok = reqs->type == jbvBinary && JsonContainerIsArray(reqs->val.binary.data);
			if (ok)
			{
				uint32		n = JsonContainerSize(reqs->val.binary.data);
				uint32		i;

				for (i = 0; i < n && ok; i++)
				{
					JsonbValue *r = getIthJsonbValueFromContainer(reqs->val.binary.data, i);

					ok = r != NULL && r->type == jbvBinary && sg_has_uuid_id(r->val.binary.data);
				}
			}
		}
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected response from Switchgrid for %s", what),
				 with_requests ?
				 errdetail("The answer is not an object with a uuid \"id\" and an array of requests with uuid ids.") :
				 errdetail("The answer is not an object with a uuid \"id\".")));
}

/*
 * Runs one of the record functions on an answer.  The casts in there (a
 * date, a uuid, a number) may refuse a field of a well-formed answer: that
 * is the server's fault, reported as 08P01 naming "what", and without the
 * CONTEXT of the record function's SQL, which tells the user nothing.
 */
static void
sg_record_answer(const char *sql, int nargs, Oid *types, Datum *values,
				 const char *nulls, const char *what)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		(void) sg_spi_as_owner(sql, nargs, types, values, nulls, NULL, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *msg;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		/* the message may quote a long field */
		msg = edata->message;
		if (strlen(msg) > SG_RECORD_DETAIL_MAX)
		{
			int			keep = pg_mbcliplen(msg, (int) strlen(msg), SG_RECORD_DETAIL_MAX - 3);

			msg = psprintf("%.*s...", keep, msg);
		}
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected response from Switchgrid for %s", what),
				 errdetail_internal("A field of the answer cannot be recorded: %s.", msg)));
	}
	PG_END_TRY();
}

/*
 * What sg_schema_has() found, by signature (string literals of this file),
 * until pg_proc changes: a look-up on every record cost a query each.
 */
#define SG_SCHEMA_CACHE_SIZE 8

typedef struct SgSchemaHas
{
	const char *signature;
	bool		has;
} SgSchemaHas;

static SgSchemaHas sg_schema_cache[SG_SCHEMA_CACHE_SIZE];
static int	sg_schema_cached = 0;
static bool sg_schema_callback_registered = false;

static void
sg_schema_cache_reset(Datum arg, int cacheid, uint32 hashvalue)
{
	sg_schema_cached = 0;
}

/*
 * Whether the installed schema has the SQL function "signature" (as
 * to_regprocedure() reads it).  The library of this version may run on a
 * database still at 0.1.0 until ALTER EXTENSION switchgrid UPDATE: what it
 * records there goes through the functions 0.1.0 has.
 */
static bool
sg_schema_has(const char *signature)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	Datum		d;
	bool		isnull;
	bool		has;
	int			i;

	if (!sg_schema_callback_registered)
	{
		CacheRegisterSyscacheCallback(PROCOID, sg_schema_cache_reset, (Datum) 0);
		sg_schema_callback_registered = true;
	}
	for (i = 0; i < sg_schema_cached; i++)
		if (strcmp(sg_schema_cache[i].signature, signature) == 0)
			return sg_schema_cache[i].has;

	values[0] = CStringGetTextDatum(signature);
	(void) sg_spi_as_owner("SELECT to_regprocedure($1) IS NOT NULL",
						   1, types, values, NULL, &d, &isnull);
	has = !isnull && DatumGetBool(d);
	/* a change of pg_proc, even one rolled back, empties the cache */
	if (sg_schema_cached < SG_SCHEMA_CACHE_SIZE)
	{
		sg_schema_cache[sg_schema_cached].signature = signature;
		sg_schema_cache[sg_schema_cached].has = has;
		sg_schema_cached++;
	}
	return has;
}

void
sg_store_ask(Jsonb *ask, double poll_in_s, int test_env)
{
	Oid			types[3] = {JSONBOID, INTERVALOID, BOOLOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	sg_check_shape(ask, "an Ask", false);
	values[0] = JsonbPGetDatum(ask);
	values[1] = sg_interval_seconds(poll_in_s);
	values[2] = BoolGetDatum(test_env > 0);
	if (test_env < 0)
		nulls[2] = 'n';
	sg_record_answer("SELECT switchgrid.record_ask($1, $2, $3)",
					 3, types, values, nulls, "an Ask");
}

/*
 * Whether recording the answer "order" of GET /order/{id} would change
 * nothing (switchgrid.order_unchanged()).  Always false where nothing is
 * recorded anyway (a standby, a read-only transaction) and on a schema that
 * does not have the function yet.  Takes no lock and writes nothing.
 */
bool
sg_order_unchanged(Jsonb *order, bool fetch)
{
	Oid			types[2] = {JSONBOID, BOOLOID};
	Datum		values[2];
	Datum		d;
	bool		isnull;

	if (RecoveryInProgress() || XactReadOnly ||
		!sg_schema_has("switchgrid.order_unchanged(jsonb, boolean)"))
		return false;
	values[0] = JsonbPGetDatum(order);
	values[1] = BoolGetDatum(fetch);
	(void) sg_spi_as_owner("SELECT switchgrid.order_unchanged($1, $2)",
						   2, types, values, NULL, &d, &isnull);
	return !isnull && DatumGetBool(d);
}

bool
sg_store_order(Jsonb *order, const char *sent_requests, const char *consent_id,
			   double poll_in_s, bool fetch)
{
	return sg_store_placed_order(order, sent_requests, consent_id, poll_in_s, fetch, -1);
}

/*
 * Records an answer about an Order.  Returns false if it was not written
 * because it changes nothing (an answer of a look-up that is the same as the
 * one recorded: see switchgrid.order_unchanged()), true otherwise.
 */
bool
sg_store_placed_order(Jsonb *order, const char *sent_requests, const char *consent_id,
					  double poll_in_s, bool fetch, int test_env)
{
	Oid			types[6] = {JSONBOID, JSONBOID, UUIDOID, INTERVALOID, BOOLOID, BOOLOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	sg_check_shape(order, "an Order", true);
	/* a look-up tells nothing but the answer: it may be the same again */
	if (sent_requests == NULL && consent_id == NULL && test_env < 0 &&
		sg_order_unchanged(order, fetch))
		return false;
	values[0] = JsonbPGetDatum(order);
	if (sent_requests)
		values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(sent_requests));
	else
		nulls[1] = 'n';
	if (consent_id)
		values[2] = sg_uuid_in(consent_id);
	else
		nulls[2] = 'n';
	values[3] = sg_interval_seconds(poll_in_s);
	values[4] = BoolGetDatum(fetch);
	values[5] = BoolGetDatum(test_env > 0);
	if (test_env < 0)
		nulls[5] = 'n';
	if (sg_schema_has("switchgrid.record_order(jsonb, jsonb, uuid, interval, boolean, boolean)"))
		sg_record_answer("SELECT switchgrid.record_order($1, $2, $3, $4, $5, $6)",
						 6, types, values, nulls, "an Order");
	else
		sg_record_answer("SELECT switchgrid.record_order($1, $2, $3, $4, $5)",
						 5, types, values, nulls, "an Order");
	return true;
}

void
sg_store_data(const char *request_id, Jsonb *data, const char *dataset)
{
	Oid			types[3] = {UUIDOID, JSONBOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	values[0] = sg_uuid_in(request_id);
	values[1] = JsonbPGetDatum(data);
	if (dataset)
		values[2] = CStringGetTextDatum(dataset);
	else
		nulls[2] = 'n';
	if (sg_schema_has("switchgrid.store_data(uuid, jsonb, text)"))
		(void) sg_spi_as_owner("SELECT switchgrid.store_data($1, $2, $3)",
							   3, types, values, nulls, NULL, NULL);
	else
		(void) sg_spi_as_owner("SELECT switchgrid.store_data($1, $2)",
							   2, types, values, nulls, NULL, NULL);
}

int64
sg_store_loadcurve(const char *request_id, int64 n, Datum *prms, Datum *ts,
				   Datum *step_s, Datum *power, bool *power_null)
{
	Oid			types[5] = {UUIDOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID,
	FLOAT8ARRAYOID};
	Datum		values[5];
	int			dims[1];
	int			lbs[1] = {1};
	bool	   *no_nulls = palloc0(sizeof(bool) * Max(n, 1));
	Datum		result;
	bool		isnull;

	dims[0] = (int) n;
	values[0] = sg_uuid_in(request_id);
	values[1] = PointerGetDatum(construct_md_array(prms, no_nulls, 1, dims, lbs,
												   TEXTOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_md_array(ts, no_nulls, 1, dims, lbs,
												   TIMESTAMPTZOID, sizeof(TimestampTz),
												   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_md_array(step_s, no_nulls, 1, dims, lbs,
												   INT4OID, sizeof(int32), true,
												   TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_md_array(power, power_null, 1, dims, lbs,
												   FLOAT8OID, sizeof(float8),
												   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	/*
	 * Between installing this library and ALTER EXTENSION switchgrid UPDATE,
	 * the schema may still be 0.1.0's, whose store_loadcurve() takes no
	 * steps: the points are stored all the same, without them.
	 */
	if (sg_schema_has("switchgrid.store_loadcurve(uuid, text[], timestamptz[], integer[],"
					  " double precision[])"))
		(void) sg_spi_as_owner("SELECT switchgrid.store_loadcurve($1, $2, $3, $4, $5)",
							   5, types, values, NULL, &result, &isnull);
	else
	{
		types[3] = FLOAT8ARRAYOID;
		values[3] = values[4];
		(void) sg_spi_as_owner("SELECT switchgrid.store_loadcurve($1, $2, $3, $4)",
							   4, types, values, NULL, &result, &isnull);
	}
	return isnull ? 0 : DatumGetInt64(result);
}

void
sg_store_failure(const char *kind, const char *id, const char *error,
				 TimestampTz retry_at)
{
	Oid			types[4] = {TEXTOID, UUIDOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(kind);
	values[1] = sg_uuid_in(id);
	values[2] = CStringGetTextDatum(error);
	values[3] = TimestampTzGetDatum(retry_at);
	/* no next try: the item is given up */
	if (retry_at == DT_NOEND)
		nulls[3] = 'n';
	(void) sg_spi_as_owner("SELECT switchgrid.record_failure($1, $2, $3, $4)",
						   4, types, values, nulls, NULL, NULL);
}

void
sg_request_lookup(const char *request_id, char **prm, char **type, char **data_url)
{
	Oid			types[1] = {UUIDOID};
	Datum		values[1];
	Datum		d;
	bool		isnull;

	/* one value, so that sg_spi_as_owner() can return it */
	values[0] = sg_uuid_in(request_id);
	(void) sg_spi_as_owner("SELECT jsonb_build_object('prm', " SG_SQL_SINGLE_PRM
						   ", 'type', type, 'url', data_url) FROM switchgrid.requests"
						   " WHERE request_id = $1",
						   1, types, values, NULL, &d, &isnull);
	*prm = *type = *data_url = NULL;
	if (!isnull)
	{
		Jsonb	   *j = DatumGetJsonbP(d);

		*prm = sg_jsonb_get_string(&j->root, "prm");
		*type = sg_jsonb_get_string(&j->root, "type");
		*data_url = sg_jsonb_get_string(&j->root, "url");
		if (*prm == NULL)
			*prm = sg_request_consent_prm(request_id);
	}
}

char *
sg_request_consent_prm(const char *request_id)
{
	Oid			types[1] = {UUIDOID};
	Datum		values[1];
	Datum		d;
	bool		isnull;
	Jsonb	   *j;
	char	   *consent;
	JsonbValue *prms;

	/*
	 * The same look-up as switchgrid.consent_prms(), written out so that it
	 * also runs against a schema not updated yet.
	 */
	values[0] = sg_uuid_in(request_id);
	(void) sg_spi_as_owner("SELECT jsonb_build_object('consent', o.consent_id,"
						   "  'prms', (SELECT jsonb_agg(DISTINCT c.key) FROM switchgrid.asks a,"
						   "           jsonb_each_text(CASE WHEN jsonb_typeof(a.consent_ids) = 'object'"
						   "                                THEN a.consent_ids ELSE '{}' END) AS c"
						   "           WHERE lower(c.value) = o.consent_id::text))"
						   " FROM switchgrid.requests r JOIN switchgrid.orders o USING (order_id)"
						   " WHERE r.request_id = $1 AND cardinality(r.prms) = 0"
						   "   AND o.consent_id IS NOT NULL",
						   1, types, values, NULL, &d, &isnull);
	if (isnull)
		return NULL;
	j = DatumGetJsonbP(d);
	consent = sg_jsonb_get_string(&j->root, "consent");
	prms = sg_jsonb_get(&j->root, "prms");
	if (prms == NULL || prms->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("consent %s is not recorded here, so request %s has no PRM", consent,
						request_id),
				 errdetail("The request names no PRM: the meter of an Order placed by consent is taken from the Ask that holds the consent, in switchgrid.asks."),
				 errhint("Record that Ask with switchgrid_asks() or switchgrid_ask_status(), then look the Order up again with switchgrid_order_status().")));
	/* a consent names one meter; if several, let the payload say which */
	if (JsonContainerSize(prms->val.binary.data) != 1)
		return NULL;
	prms = getIthJsonbValueFromContainer(prms->val.binary.data, 0);
	if (prms == NULL || prms->type != jbvString)
		return NULL;
	return pnstrdup(prms->val.string.val, prms->val.string.len);
}

