/*-------------------------------------------------------------------------
 * json_util.h
 *	  Turning API responses into jsonb, and reading fields out of jsonb.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_JSON_UTIL_H
#define SWITCHGRID_JSON_UTIL_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

/*
 * Parses a response's UTF-8 body into jsonb (in the database encoding).  A
 * body that is not JSON raises SQLSTATE 08P01 naming "what", with a detail
 * that names the HTTP status, method and path and quotes the parser's
 * complaint (any copy of the API token blanked), e.g. "HTTP 200 on GET
 * /order/<id>: ...".
 */
struct SgHttpResponse;
extern Jsonb *sg_response_to_jsonb(const struct SgHttpResponse *resp, const char *what);

/*
 * The same for an answer about one object, asked for by its id ("GET
 * /order/{id}", "GET /ask/{id}"): an object whose "id" is another id raises
 * 08P01 "unexpected response", so that a well-formed answer about another
 * Order or Ask is never recorded as that one.  An answer without a string
 * "id" is left to the shape check of the record (store.c).
 */
extern Jsonb *sg_response_for_id(const struct SgHttpResponse *resp, const char *what,
								 const char *id);

/*
 * The value of a top-level string field of a JSON text, palloc'd, or NULL if
 * the text is not a JSON object or has no such string field.  Never raises
 * an error on bad JSON.
 */
extern char *sg_json_top_level_string(const char *json, size_t len, const char *key);

/*
 * The value of a top-level string field "key" of a JSON text if it is a uuid
 * in canonical form, lower-cased and palloc'd, else NULL.  Reads the bytes
 * leniently: the text may be cut short, malformed after the field, or not
 * valid UTF-8 (the answer to a POST that could not be parsed, say).  Never
 * raises an error.
 */
extern char *sg_json_lenient_top_level_uuid(const char *data, size_t len, const char *key);

/* The value under "key" of an object container, or NULL (absent or null). */
extern JsonbValue *sg_jsonb_get(JsonbContainer *obj, const char *key);

/* A string field as a palloc'd C string, or NULL if absent, null or not a string. */
extern char *sg_jsonb_get_string(JsonbContainer *obj, const char *key);

/* A field as a jsonb Datum (any type), or NULL if absent or null. */
extern Jsonb *sg_jsonb_get_jsonb(JsonbContainer *obj, const char *key);

/* Appends "value" to buf as a JSON string literal. */
extern void sg_json_append_string(StringInfo buf, const char *value);

#endif							/* SWITCHGRID_JSON_UTIL_H */
