/*-------------------------------------------------------------------------
 * input.h
 *	  Caps on what the SQL functions accept, and how a bad value is quoted.
 *
 * Every text, array and JSON argument has a cap, checked before the value
 * is copied or any HTTP call is made, so a huge argument fails at once and
 * cheaply.  README.md ("Limits") lists them; keep both in step.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_INPUT_H
#define SWITCHGRID_INPUT_H

#include "fmgr.h"

/* text arguments, in characters (22023 beyond) */
#define SG_MAX_NAME_CHARS		200		/* search: a holder's name */
#define SG_MAX_ADDRESS_CHARS	500		/* search: an address */
#define SG_MAX_PRM_CHARS		14		/* a PRM is 14 digits */
#define SG_MAX_FILTER_CHARS		16000	/* switchgrid_asks(status, prm) lists */
#define SG_MAX_WORD_CHARS		64		/* a type, direction, duration or period */

/* arrays, in elements, and JSON documents, in bytes (54000 beyond) */
#define SG_MAX_CONTRACTS		1000	/* contracts of an Ask */
#define SG_MAX_PURPOSES			16		/* purposes of an Ask */
#define SG_MAX_PRMS				1000	/* PRMs of one request */
#define SG_MAX_REQUESTS			100		/* requests of one Order */
#define SG_MAX_JSON_BYTES		(1024 * 1024)	/* an Ask body, requests, signer, scopes */
#define SG_MAX_WEBHOOK_BYTES	(64 * 1024)		/* a webhook payload (also checked by
												 * switchgrid.record_webhook()) */

/* characters of a bad value quoted in a message */
#define SG_QUOTE_CHARS			40

/*
 * A text argument as a palloc'd C string, or NULL if it is SQL NULL.  A value
 * of more than "maxchars" characters raises 22023 naming "argname"; the size
 * is checked before the value is detoasted.
 */
extern char *sg_text_arg_capped(FunctionCallInfo fcinfo, int argno,
								const char *argname, int maxchars);

/*
 * Raises 54000 if the array argument (not NULL) has more than "maxitems"
 * elements, 2202E if it has more than one dimension.
 */
extern void sg_check_array_arg(FunctionCallInfo fcinfo, int argno,
							   const char *argname, int maxitems);

/* Raises 54000 if the jsonb argument (not NULL) is over "maxbytes". */
extern void sg_check_jsonb_arg(FunctionCallInfo fcinfo, int argno,
							   const char *argname, int maxbytes);

/*
 * The start of "value" for a message: at most SG_QUOTE_CHARS characters,
 * then "..." if it was cut; palloc'd.
 */
extern char *sg_quote_start(const char *value);

/* The same for "len" bytes that need not end with a NUL. */
extern char *sg_quote_start_len(const char *value, int len);

#endif							/* SWITCHGRID_INPUT_H */
