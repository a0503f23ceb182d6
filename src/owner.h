/*-------------------------------------------------------------------------
 * owner.h
 *	  The security boundary: running one SQL statement as the owner of the
 *	  switchgrid schema.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_OWNER_H
#define SWITCHGRID_OWNER_H

#include "access/tupdesc.h"
#include "executor/spi.h"
#include "utils/tuplestore.h"

/*
 * Runs one SQL statement through SPI as the owner of the switchgrid schema
 * (the extension's owner), so that a role granted only EXECUTE on the API
 * functions can still have its Orders recorded without any access to the
 * tables.  Returns SPI_processed; with "result" set, the first column of the
 * first row (copied out of SPI), or (Datum) 0 / *isnull if none.  Without
 * "result", does nothing (returns 0) on a standby or in a read-only
 * transaction.
 */
extern SPIPlanPtr sg_spi_prepare(const char *sql, int nargs, Oid *types, bool keep);
extern uint64 sg_spi_as_owner(const char *sql, int nargs, Oid *types,
							  Datum *values, const char *nulls,
							  Datum *result, bool *isnull);

/*
 * The same, but the statement sees every transaction committed by now, even
 * in a transaction whose snapshot is older (REPEATABLE READ): for a count
 * that must not miss what another transaction committed meanwhile.
 */
extern uint64 sg_spi_latest_as_owner(const char *sql, int nargs, Oid *types,
									 Datum *values, const char *nulls,
									 Datum *result, bool *isnull);

/*
 * Runs one read-only query the same way and puts the first desc->natts
 * columns of each of its rows into "store" (whose tuple descriptor is
 * "desc"; the query's columns must have its types, in its order).  Used by
 * the functions that read a payload as rows with the owner's SQL readers.
 */
extern uint64 sg_spi_rows_as_owner(const char *sql, int nargs, Oid *types,
								   Datum *values, const char *nulls,
								   Tuplestorestate *store, TupleDesc desc);

#endif							/* SWITCHGRID_OWNER_H */
