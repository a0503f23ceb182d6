/*-------------------------------------------------------------------------
 * input.c
 *	  Caps on what the SQL functions accept, and how a bad value is quoted.
 *
 * A cap is checked on the argument's size as stored, before it is
 * detoasted or copied: a 100 MB argument costs no more than a short one.
 * Messages quote only the start of a bad value, so an error never echoes
 * a huge one back (nor fills the server log with it).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "compat.h"
#include "input.h"

char *
sg_text_arg_capped(FunctionCallInfo fcinfo, int argno, const char *argname,
				   int maxchars)
{
	Datum		d;
	Size		raw;
	text	   *t;
	int			nchars;

	if (PG_ARGISNULL(argno))
		return NULL;
	d = PG_GETARG_DATUM(argno);
	raw = toast_raw_datum_size(d) - VARHDRSZ;

	/* a character is at most MAX_MULTIBYTE_CHAR_LEN bytes */
	if (raw <= (Size) maxchars * MAX_MULTIBYTE_CHAR_LEN)
	{
		t = DatumGetTextPP(d);
		nchars = pg_mbstrlen_with_len(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		if (nchars <= maxchars)
			return text_to_cstring(t);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s is too long", argname),
			 errdetail("The limit is %d characters.", maxchars)));
	return NULL;				/* keep the compiler quiet */
}

void
sg_check_array_arg(FunctionCallInfo fcinfo, int argno, const char *argname,
				   int maxitems)
{
	ArrayType  *arr;
	int			n;

	if (PG_ARGISNULL(argno))
		return;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", argname)));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (n > maxitems)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has too many elements", argname),
				 errdetail("It has %d; the limit is %d.", n, maxitems)));
}

void
sg_check_jsonb_arg(FunctionCallInfo fcinfo, int argno, const char *argname,
				   int maxbytes)
{
	Size		raw;

	if (PG_ARGISNULL(argno))
		return;
	raw = toast_raw_datum_size(PG_GETARG_DATUM(argno)) - VARHDRSZ;
	if (raw > (Size) maxbytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", argname),
				 errdetail("It takes %zu bytes as jsonb; the limit is %d bytes.",
						   (size_t) raw, maxbytes)));
}

char *
sg_quote_start_len(const char *value, int len)
{
	int			keep = 0;
	int			nchars = 0;

	/* walk at most SG_QUOTE_CHARS characters: the value may be huge */
	while (keep < len && nchars < SG_QUOTE_CHARS && value[keep] != '\0')
	{
		keep += pg_mblen(value + keep);
		nchars++;
	}
	keep = Min(keep, len);
	if (keep < len && value[keep] != '\0')
		return psprintf("%.*s...", keep, value);
	return pnstrdup(value, keep);
}

char *
sg_quote_start(const char *value)
{
	/* no strlen(): the walk stops at the NUL or after SG_QUOTE_CHARS */
	return sg_quote_start_len(value, PG_INT32_MAX);
}
