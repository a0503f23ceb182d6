/*-------------------------------------------------------------------------
 * store.c
 *	  Recording Asks, Orders and fetched data in the switchgrid.* tables.
 *
 * The logic of what a record means (upserts, state transitions, NOTIFY)
 * lives in the SQL functions of the extension script (switchgrid.record_*,
 * switchgrid.store_*), in one place for the SQL API and the worker.  This
 * file only calls them, as the extension's owner.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "http.h"
#include "json_util.h"
#include "loadcurve.h"
#include "store.h"

static Oid
sg_schema_owner(void)
{
	Oid			nsp = get_namespace_oid("switchgrid", true);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"switchgrid\" does not exist"),
				 errhint("Run CREATE EXTENSION switchgrid.")));
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

uint64
sg_spi_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
				const char *nulls, Datum *result, bool *isnull)
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	int			rc;
	uint64		processed;

	/*
	 * A look-up on a standby or in a read-only transaction is not recorded
	 * (billable calls refuse to run there: see sg_check_writable()).
	 */
	if (result == NULL && (RecoveryInProgress() || XactReadOnly))
		return 0;

	/*
	 * Run as the owner, in a security-restricted operation and with a
	 * search_path of pg_catalog only, as PostgreSQL does for maintenance
	 * commands: nothing the caller placed in a schema of its own (or in
	 * pg_temp) can be picked up while we hold the owner's rights.  An error
	 * in between restores both at (sub)transaction abort.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(sg_schema_owner(),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	processed = SPI_processed;
	if (result != NULL)
	{
		*isnull = true;
		*result = (Datum) 0;
		if (SPI_processed > 0 && SPI_tuptable != NULL)
		{
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);

			if (!*isnull)
			{
				Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, 0);

				*result = SPI_datumTransfer(d, att->attbyval, att->attlen);
			}
		}
	}
	SPI_finish();

	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);
	return processed;
}

static Datum
sg_interval_seconds(double s)
{
	return DirectFunctionCall3(interval_in,
							   CStringGetDatum(psprintf("%.3f seconds", s)),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

static Datum
sg_uuid(const char *s)
{
	return DirectFunctionCall1(uuid_in, CStringGetDatum(s));
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
	(void) sg_spi_as_owner("SELECT switchgrid.record_ask($1, $2, $3)",
						   3, types, values, nulls, NULL, NULL);
}

void
sg_store_order(Jsonb *order, const char *sent_requests, const char *consent_id,
			   double poll_in_s, bool fetch)
{
	Oid			types[5] = {JSONBOID, JSONBOID, UUIDOID, INTERVALOID, BOOLOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	sg_check_shape(order, "an Order", true);
	values[0] = JsonbPGetDatum(order);
	if (sent_requests)
		values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(sent_requests));
	else
		nulls[1] = 'n';
	if (consent_id)
		values[2] = sg_uuid(consent_id);
	else
		nulls[2] = 'n';
	values[3] = sg_interval_seconds(poll_in_s);
	values[4] = BoolGetDatum(fetch);
	(void) sg_spi_as_owner("SELECT switchgrid.record_order($1, $2, $3, $4, $5)",
						   5, types, values, nulls, NULL, NULL);
}

void
sg_store_data(const char *request_id, Jsonb *data)
{
	Oid			types[2] = {UUIDOID, JSONBOID};
	Datum		values[2];

	values[0] = sg_uuid(request_id);
	values[1] = JsonbPGetDatum(data);
	(void) sg_spi_as_owner("SELECT switchgrid.store_data($1, $2)",
						   2, types, values, NULL, NULL, NULL);
}

int64
sg_store_loadcurve(const char *request_id, int64 n, Datum *prms, Datum *ts,
				   Datum *power, bool *power_null)
{
	Oid			types[4] = {UUIDOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID};
	Datum		values[4];
	int			dims[1];
	int			lbs[1] = {1};
	bool	   *no_nulls = palloc0(sizeof(bool) * Max(n, 1));
	Datum		result;
	bool		isnull;

	dims[0] = (int) n;
	values[0] = sg_uuid(request_id);
	values[1] = PointerGetDatum(construct_md_array(prms, no_nulls, 1, dims, lbs,
												   TEXTOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_md_array(ts, no_nulls, 1, dims, lbs,
												   TIMESTAMPTZOID, sizeof(TimestampTz),
												   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_md_array(power, power_null, 1, dims, lbs,
												   FLOAT8OID, sizeof(float8),
												   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	(void) sg_spi_as_owner("SELECT switchgrid.store_loadcurve($1, $2, $3, $4)",
						   4, types, values, NULL, &result, &isnull);
	return isnull ? 0 : DatumGetInt64(result);
}

void
sg_store_failure(const char *kind, const char *id, const char *error,
				 TimestampTz retry_at)
{
	Oid			types[4] = {TEXTOID, UUIDOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[4];

	values[0] = CStringGetTextDatum(kind);
	values[1] = sg_uuid(id);
	values[2] = CStringGetTextDatum(error);
	values[3] = TimestampTzGetDatum(retry_at);
	(void) sg_spi_as_owner("SELECT switchgrid.record_failure($1, $2, $3, $4)",
						   4, types, values, NULL, NULL, NULL);
}

bool
sg_is_curve_type(const char *type)
{
	return type != NULL && (strcmp(type, "LOADCURVE") == 0 ||
							strcmp(type, "R63") == 0 || strcmp(type, "R63_SYNC") == 0);
}

/* A parsed load curve, as the arrays switchgrid.store_loadcurve() takes. */
typedef struct SgCurveArrays
{
	Datum	   *prm;
	Datum	   *ts;
	Datum	   *power;
	bool	   *power_null;
	int64		n;
	int64		cap;
	const char *last_prm;
	Datum		prm_datum;
} SgCurveArrays;

static void
sg_curve_to_arrays(void *arg, const char *prm, TimestampTz ts, bool isnull, double power_w)
{
	SgCurveArrays *a = (SgCurveArrays *) arg;

	if (a->n == a->cap)
	{
		a->cap *= 2;
		a->prm = repalloc_huge(a->prm, a->cap * sizeof(Datum));
		a->ts = repalloc_huge(a->ts, a->cap * sizeof(Datum));
		a->power = repalloc_huge(a->power, a->cap * sizeof(Datum));
		a->power_null = repalloc_huge(a->power_null, a->cap * sizeof(bool));
	}
	if (prm != a->last_prm || a->n == 0)
	{
		if (prm == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("load curve names no PRM")));
		a->prm_datum = CStringGetTextDatum(prm);
		a->last_prm = prm;
	}
	a->prm[a->n] = a->prm_datum;
	a->ts[a->n] = TimestampTzGetDatum(ts);
	a->power[a->n] = Float8GetDatum(isnull ? 0 : power_w);
	a->power_null[a->n] = isnull;
	a->n++;
}

void
sg_store_result(const char *request_id, const char *type, const char *prm,
				SgHttpResponse *resp)
{
	const char *what = psprintf("data of request %s", request_id);

	if (sg_is_curve_type(type))
	{
		SgCurveArrays a;

		memset(&a, 0, sizeof(a));
		a.cap = 4096;
		a.prm = palloc(a.cap * sizeof(Datum));
		a.ts = palloc(a.cap * sizeof(Datum));
		a.power = palloc(a.cap * sizeof(Datum));
		a.power_null = palloc(a.cap * sizeof(bool));
		(void) sg_parse_loadcurve(resp->body, resp->len, prm,
								  sg_curve_to_arrays, &a, what);
		(void) sg_store_loadcurve(request_id, a.n, a.prm, a.ts, a.power, a.power_null);
	}
	else
		sg_store_data(request_id, sg_body_to_jsonb(resp->body, resp->len, what));
}
