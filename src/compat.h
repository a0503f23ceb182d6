/*-------------------------------------------------------------------------
 * compat.h
 *	  The one place where differences between PostgreSQL 13 and 17 are
 *	  papered over, so that the rest of the code reads as for the newest.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_COMPAT_H
#define SWITCHGRID_COMPAT_H

/*
 * The JSON shims come first and also build with -DFRONTEND, for the parsers
 * that the fuzz harness (test/fuzz) links without a server.
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

#if PG_VERSION_NUM < 130000
#error "switchgrid needs PostgreSQL 13 or later"
#endif

/*
 * JSON semantic-action callbacks return an error code from PostgreSQL 16 on,
 * and nothing before.  Callbacks are declared with SG_JSON_CB and end with
 * SG_JSON_RETURN.
 */
#if PG_VERSION_NUM >= 160000
#define SG_JSON_CB JsonParseErrorType
#define SG_JSON_RETURN return JSON_SUCCESS
#else
#define SG_JSON_CB void
#define SG_JSON_RETURN return
#endif

/*
 * A callback that has found an error ends with SG_JSON_FAIL: from 16 on the
 * parse stops there; before, the parser cannot be stopped but by a longjmp,
 * so the callbacks must ignore what follows (see curveparse.c).
 */
#if PG_VERSION_NUM >= 160000
#define SG_JSON_FAIL return JSON_SEM_ACTION_FAILED
#else
#define SG_JSON_FAIL return
#endif

/*
 * Returns a lexer over a UTF-8 buffer, with de-escaped strings.  The buffer
 * must stay alive as long as the lexer.
 */
static inline JsonLexContext *
sg_make_json_lexer(char *json, size_t len)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, PG_UTF8, true);
#else
	return makeJsonLexContextCstringLen(json, (int) len, PG_UTF8, true);
#endif
}

/* The parser's detail for an error, palloc'd and independent of the lexer. */
static inline char *
sg_json_errdetail(JsonParseErrorType error, JsonLexContext *lex)
{
#if defined(FRONTEND) && PG_VERSION_NUM < 160000
	/* libpgcommon has no json_errdetail() outside the server before 16 */
	return psprintf("The body is not valid JSON (parser error %d).", (int) error);
#elif PG_VERSION_NUM >= 170000
	return pstrdup(json_errdetail(error, lex));
#else
	return json_errdetail(error, lex);
#endif
}

/* Frees a lexer made by sg_make_json_lexer(), for code that runs outside a memory context. */
static inline void
sg_free_json_lexer(JsonLexContext *lex)
{
#if PG_VERSION_NUM >= 170000
	freeJsonLexContext(lex);
#else
	if (lex->strval != NULL)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
#endif
}

#ifndef FRONTEND

#include "funcapi.h"
#include "pgstat.h"
#include "utils/guc.h"

/* wait events moved out of pgstat.h in PostgreSQL 14 */
#if PG_VERSION_NUM >= 140000
#include "utils/wait_event.h"
#endif

/* InitMaterializedSRF() arrived in PostgreSQL 15.1 (15.0 had SetSingleFuncCall). */
#if PG_VERSION_NUM < 150001
#include "miscadmin.h"
#include "utils/tuplestore.h"

#ifndef MAT_SRF_USE_EXPECTED_DESC
#define MAT_SRF_USE_EXPECTED_DESC 0x01
#define MAT_SRF_BLESS 0x02
#endif

static inline void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcontext;
	TupleDesc	tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	oldcontext = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = CreateTupleDescCopy(tupdesc);
	if (flags & MAT_SRF_BLESS)
		BlessTupleDesc(tupdesc);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(oldcontext);
}
#endif

/*
 * Shared memory is asked for from shmem_request_hook from PostgreSQL 15 on,
 * and directly from _PG_init() before.  sg_request_shmem() takes the
 * function that asks (RequestAddinShmemSpace() and the like) and calls it
 * at the right time; call it once, from _PG_init() while preloading.
 */
#if PG_VERSION_NUM >= 150000
#include "miscadmin.h"

static shmem_request_hook_type sg_prev_shmem_request_hook pg_attribute_unused() = NULL;
static void (*sg_shmem_request_fn) (void) pg_attribute_unused() = NULL;

static inline void
sg_shmem_request_chain(void)
{
	if (sg_prev_shmem_request_hook)
		sg_prev_shmem_request_hook();
	sg_shmem_request_fn();
}

static inline void
sg_request_shmem(void (*request) (void))
{
	sg_prev_shmem_request_hook = shmem_request_hook;
	sg_shmem_request_fn = request;
	shmem_request_hook = sg_shmem_request_chain;
}
#else
static inline void
sg_request_shmem(void (*request) (void))
{
	request();
}
#endif

/* MarkGUCPrefixReserved() was EmitWarningsOnPlaceholders() before 15. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

#endif							/* !FRONTEND */

#endif							/* SWITCHGRID_COMPAT_H */
