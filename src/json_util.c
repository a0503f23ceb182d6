/*-------------------------------------------------------------------------
 * json_util.c
 *	  Turning API responses into jsonb, and reading fields out of jsonb.
 *
 * Bodies from the API are UTF-8; they are converted to the database encoding
 * before they become jsonb.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "compat.h"
#include "http.h"
#include "input.h"
#include "json_util.h"

#define SG_PARSE_DETAIL_MAX 400		/* bytes of the parser's detail kept */

/*
 * What the JSON parser says is wrong with "text", for an errdetail: with
 * every copy of the API token blanked before the parser sees it (its
 * messages quote the offending token), and cut to SG_PARSE_DETAIL_MAX.
 * Returns a palloc'd full sentence.
 */
static char *
sg_parse_error_detail(const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *copy = pstrdup(text);
	char	   *volatile detail = NULL;

	if (!sg_blank_token(copy))
		return pstrdup("The body is not valid JSON.");
	PG_TRY();
	{
		(void) DirectFunctionCall1(jsonb_in, CStringGetDatum(copy));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		detail = edata->detail ? edata->detail : edata->message;
	}
	PG_END_TRY();
	if (detail == NULL)
		return pstrdup("The body is not valid JSON.");
	if (strlen(detail) > SG_PARSE_DETAIL_MAX)
	{
		int			keep = pg_mbcliplen(detail, (int) strlen(detail), SG_PARSE_DETAIL_MAX - 3);

		strcpy(detail + keep, "...");
	}
	return detail;
}

Jsonb *
sg_response_to_jsonb(const SgHttpResponse *resp, const char *what)
{
	const char *body = resp->body;
	size_t		len = resp->len;
	const char *where = resp->where;
	long		status = resp->status;
	Datum		d = (Datum) 0;
	MemoryContext oldcxt = CurrentMemoryContext;
	char	   *volatile text = NULL;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("empty response from Switchgrid for %s", what),
				 errdetail("HTTP %ld on %s with an empty body.", status, where)));

	/*
	 * jsonb_in() reports bad JSON as bad user input (22P02), and the
	 * encoding check bytes that are not UTF-8 as 22021; here it is the
	 * remote side that misbehaved, so the error is re-raised as a protocol
	 * violation.  The parser's own detail quotes the body, so it is rebuilt
	 * from a copy without the token.
	 */
	PG_TRY();
	{
		text = pg_any_to_server(body, (int) len, PG_UTF8);
		d = DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *detail;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_STATEMENT_TOO_COMPLEX)
		{
			/* nested deeper than max_stack_depth lets the parser go */
			FlushErrorState();
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("malformed response from Switchgrid for %s", what),
					 errdetail("HTTP %ld on %s: the JSON is nested too deeply.", status, where)));
		}
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		/*
		 * Not UTF-8: the encoding check's detail quotes a few bytes only.
		 * Not JSON: the parser's detail quotes the body, so it is rebuilt.
		 */
		if (text == NULL)
			detail = edata->detail ? edata->detail : edata->message;
		else
			detail = sg_parse_error_detail(text);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("malformed response from Switchgrid for %s", what),
				 errdetail_internal("HTTP %ld on %s: %s", status, where, detail)));
	}
	PG_END_TRY();

	/*
	 * Every copy of the token was blanked in the raw bytes, but a JSON
	 * escape ("\u0073im-token") spells it only once parsed: look again, in
	 * the parsed text, where a backslash could have hidden one.
	 */
	if (memchr(body, '\\', len) != NULL &&
		sg_text_has_token(JsonbToCString(NULL, &DatumGetJsonbP(d)->root, (int) len)))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected response from Switchgrid for %s", what),
				 errdetail("HTTP %ld on %s: the answer spells out the API token in JSON escapes.",
						   status, where)));

	return DatumGetJsonbP(d);
}


Jsonb *
sg_response_for_id(const SgHttpResponse *resp, const char *what, const char *id)
{
	Jsonb	   *j = sg_response_to_jsonb(resp, what);
	char	   *answered;

	if (JB_ROOT_IS_SCALAR(j) || !JB_ROOT_IS_OBJECT(j))
		return j;
	answered = sg_jsonb_get_string(&j->root, "id");
	/* uuids in any case: the record casts "id" to uuid */
	if (answered == NULL || pg_strcasecmp(answered, id) == 0)
		return j;
	/* what is quoted of the answer is first rid of any copy of the token */
	if (sg_blank_token(answered))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected response from Switchgrid for %s", what),
				 errdetail_internal("HTTP %ld on %s: the answer is about \"%s\", not the one asked for.",
									resp->status, resp->where, sg_quote_start(answered))));
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("unexpected response from Switchgrid for %s", what),
			 errdetail_internal("HTTP %ld on %s: the answer is about another id than the one asked for.",
								resp->status, resp->where)));
	return NULL;				/* keep the compiler quiet */
}

/* State of the search for a top-level string field. */
typedef struct SgTopLevelSearch
{
	const char *key;
	int			depth;
	bool		in_key;
	char	   *found;
} SgTopLevelSearch;

static SG_JSON_CB
sg_tls_object_start(void *state)
{
	((SgTopLevelSearch *) state)->depth++;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_tls_object_end(void *state)
{
	((SgTopLevelSearch *) state)->depth--;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_tls_field_start(void *state, char *fname, bool isnull)
{
	SgTopLevelSearch *s = (SgTopLevelSearch *) state;

	s->in_key = (s->depth == 1 && strcmp(fname, s->key) == 0);
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_tls_array_start(void *state)
{
	SgTopLevelSearch *s = (SgTopLevelSearch *) state;

	s->depth++;
	s->in_key = false;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_tls_array_end(void *state)
{
	((SgTopLevelSearch *) state)->depth--;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_tls_scalar(void *state, char *token, JsonTokenType tokentype)
{
	SgTopLevelSearch *s = (SgTopLevelSearch *) state;

	if (s->in_key && s->depth == 1 && tokentype == JSON_TOKEN_STRING &&
		s->found == NULL)
		s->found = pstrdup(token);
	s->in_key = false;
	SG_JSON_RETURN;
}

char *
sg_json_top_level_string(const char *json, size_t len, const char *key)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	SgTopLevelSearch state;
	char	   *copy;

	if (len == 0)
		return NULL;
	copy = pnstrdup(json, len);
	memset(&state, 0, sizeof(state));
	state.key = key;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &state;
	sem.object_start = sg_tls_object_start;
	sem.object_end = sg_tls_object_end;
	sem.array_start = sg_tls_array_start;
	sem.array_end = sg_tls_array_end;
	sem.object_field_start = sg_tls_field_start;
	sem.scalar = sg_tls_scalar;

	lex = sg_make_json_lexer(copy, len);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS)
		return NULL;
	if (state.found == NULL)
		return NULL;
	return pg_any_to_server(state.found, (int) strlen(state.found), PG_UTF8);
}

JsonbValue *
sg_jsonb_get(JsonbContainer *obj, const char *key)
{
	JsonbValue *v;

	if (obj == NULL || !JsonContainerIsObject(obj))
		return NULL;
	v = getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	return v;
}

char *
sg_jsonb_get_string(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = sg_jsonb_get(obj, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

Jsonb *
sg_jsonb_get_jsonb(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = sg_jsonb_get(obj, key);

	if (v == NULL)
		return NULL;
	return JsonbValueToJsonb(v);
}

void
sg_json_append_string(StringInfo buf, const char *value)
{
	escape_json(buf, value);
}

/*
 * Whether the "n" bytes at "s" are a uuid in canonical form (hex digits of
 * either case, hyphens at 8, 13, 18 and 23).
 */
static bool
sg_is_canonical_uuid(const char *s, size_t n)
{
	size_t		i;

	if (n != 36)
		return false;
	for (i = 0; i < n; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' :
			!isxdigit((unsigned char) s[i]))
			return false;
	}
	return true;
}

/*
 * Scans a string that opens at data[*pos] (a '"'); leaves *pos after its
 * closing quote, or at "len" if the text ends first.  Returns where its
 * content starts, its raw length (escapes untouched) in *n, and in *closed
 * whether its closing quote is there.
 */
static const char *
sg_scan_string(const char *data, size_t len, size_t *pos, size_t *n, bool *closed)
{
	size_t		start = *pos + 1;
	size_t		i = start;

	while (i < len && data[i] != '"')
		i += (data[i] == '\\') ? 2 : 1;
	*closed = i < len;
	*n = Min(i, len) - start;
	*pos = Min(i + 1, len);
	return data + start;
}

char *
sg_json_lenient_top_level_uuid(const char *data, size_t len, const char *key)
{
	size_t		klen = strlen(key);
	size_t		pos = 0;
	int			depth = 0;

	while (pos < len)
	{
		char		c = data[pos];

		if (c == '{' || c == '[')
			depth++, pos++;
		else if (c == '}' || c == ']')
			depth--, pos++;
		else if (c != '"')
			pos++;
		else
		{
			size_t		n;
			bool		closed;
			const char *s = sg_scan_string(data, len, &pos, &n, &closed);
			bool		is_key = depth == 1 && n == klen && memcmp(s, key, klen) == 0;
			size_t		p = pos;

			if (!is_key)
				continue;
			/* the key, then ':' and a string value */
			while (p < len && isspace((unsigned char) data[p]))
				p++;
			if (p >= len || data[p] != ':')
				continue;
			p++;
			while (p < len && isspace((unsigned char) data[p]))
				p++;
			if (p >= len || data[p] != '"')
				continue;
			pos = p;
			s = sg_scan_string(data, len, &pos, &n, &closed);
			if (closed && sg_is_canonical_uuid(s, n))
			{
				char	   *id = pnstrdup(s, n);
				char	   *q;

				for (q = id; *q; q++)
					*q = pg_tolower((unsigned char) *q);
				return id;
			}
		}
	}
	return NULL;
}
