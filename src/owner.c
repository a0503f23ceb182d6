/*-------------------------------------------------------------------------
 * owner.c
 *	  The security boundary: running one SQL statement as the owner of the
 *	  switchgrid schema.
 *
 * A role granted only EXECUTE on the API functions has its Asks, Orders and
 * data recorded without any right on the tables.  Everything that writes or
 * reads the switchgrid.* tables on behalf of such a role goes through
 * sg_spi_as_owner(), and nothing else in the extension changes the user id.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "owner.h"

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

/*
 * Plans of the statements run here, kept for the life of the backend: the
 * statements come from a closed set of literals in the C code, and parsing
 * and planning them anew cost a status look-up about a third of its time.
 * The plan cache replans them when what they use changes (ALTER EXTENSION
 * UPDATE, say), and they always run with the same search_path.  Past
 * SG_MAX_PLANS distinct statements, the others run unplanned, as before.
 */
#define SG_MAX_PLANS 48
#define SG_PLAN_MAX_ARGS 8

typedef struct SgPlan
{
	char	   *sql;			/* in TopMemoryContext */
	int			nargs;
	Oid			types[SG_PLAN_MAX_ARGS];
	SPIPlanPtr	plan;
} SgPlan;

static SgPlan sg_plans[SG_MAX_PLANS];
static int	sg_nplans = 0;

/*
 * Prepares "sql" (inside SPI); with "keep", for the life of the process
 * (SPI_keepplan: the plan cache replans it when what it uses changes).
 */
SPIPlanPtr
sg_spi_prepare(const char *sql, int nargs, Oid *types, bool keep)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (keep && SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/*
 * The kept plan of "sql" with these argument types, prepared now if it is
 * new (inside SPI), or NULL if the statement is not to be kept.
 */
static SPIPlanPtr
sg_plan_for(const char *sql, int nargs, Oid *types)
{
	SgPlan	   *p;
	SPIPlanPtr	plan;
	int			i;

	if (nargs > SG_PLAN_MAX_ARGS)
		return NULL;
	for (i = 0; i < sg_nplans; i++)
	{
		p = &sg_plans[i];
		if (p->nargs == nargs && strcmp(p->sql, sql) == 0 &&
			(nargs == 0 || memcmp(p->types, types, sizeof(Oid) * nargs) == 0))
			return p->plan;
	}
	if (sg_nplans >= SG_MAX_PLANS)
		return NULL;
	plan = sg_spi_prepare(sql, nargs, types, true);
	p = &sg_plans[sg_nplans];
	p->sql = MemoryContextStrdup(TopMemoryContext, sql);
	p->nargs = nargs;
	if (nargs > 0)
		memcpy(p->types, types, sizeof(Oid) * nargs);
	p->plan = plan;
	sg_nplans++;
	return plan;
}

/*
 * The body of sg_spi_as_owner() and sg_spi_rows_as_owner(): runs "sql" as
 * the owner and, with "store", copies the first desc->natts columns of each
 * row there.
 */
static uint64
sg_spi_run_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
					const char *nulls, Datum *result, bool *isnull,
					Tuplestorestate *store, TupleDesc desc, bool latest)
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	int			rc;
	uint64		processed;
	SPIPlanPtr	plan;

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
	plan = sg_plan_for(sql, nargs, types);
	if (latest)
	{
		if (plan == NULL)
			plan = sg_spi_prepare(sql, nargs, types, false);
		rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
								  InvalidSnapshot, false, false, 0);
	}
	else if (plan != NULL)
		rc = SPI_execute_plan(plan, values, nulls, false, 0);
	else
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	processed = SPI_processed;
	if (store != NULL && SPI_tuptable != NULL)
	{
		Datum	   *row = palloc(sizeof(Datum) * desc->natts);
		bool	   *rownulls = palloc(sizeof(bool) * desc->natts);
		uint64		i;
		int			j;

		Assert(SPI_tuptable->tupdesc->natts >= desc->natts);
		for (i = 0; i < SPI_processed; i++)
		{
			for (j = 0; j < desc->natts; j++)
			{
				Assert(TupleDescAttr(SPI_tuptable->tupdesc, j)->atttypid ==
					   TupleDescAttr(desc, j)->atttypid);
				row[j] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									   j + 1, &rownulls[j]);
			}
			tuplestore_putvalues(store, desc, row, rownulls);
		}
	}
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

uint64
sg_spi_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
				const char *nulls, Datum *result, bool *isnull)
{
	/*
	 * A look-up on a standby or in a read-only transaction is not recorded
	 * (billable calls refuse to run there: see sg_check_writable()).
	 */
	if (result == NULL && (RecoveryInProgress() || XactReadOnly))
		return 0;
	return sg_spi_run_as_owner(sql, nargs, types, values, nulls, result, isnull,
							   NULL, NULL, false);
}

uint64
sg_spi_latest_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
					   const char *nulls, Datum *result, bool *isnull)
{
	return sg_spi_run_as_owner(sql, nargs, types, values, nulls, result, isnull,
							   NULL, NULL, true);
}

uint64
sg_spi_rows_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
					 const char *nulls, Tuplestorestate *store, TupleDesc desc)
{
	return sg_spi_run_as_owner(sql, nargs, types, values, nulls, NULL, NULL,
							   store, desc, false);
}
