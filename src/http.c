/*-------------------------------------------------------------------------
 * http.c
 *	  The one place that talks to the Switchgrid API over libcurl.
 *
 * A backend keeps one libcurl multi handle and one easy handle for its whole
 * life, on purpose: the multi handle owns the connection cache, so that the
 * connection to the API stays alive from one call to the next.  Transfers are
 * driven through the multi interface in slices of at most SG_POLL_MS, with
 * CHECK_FOR_INTERRUPTS() between slices, so a cancel or statement_timeout
 * stops a hung request promptly with the usual error.
 *
 * Nothing here puts the API token into a message: errors name the method,
 * the path and the HTTP status, and the API's own message with any copy of
 * the token blanked out.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "lib/ilist.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "guc.h"
#include "http.h"
#include "json_util.h"

#define SG_USER_AGENT "switchgrid-postgresql/" EXTVERSION
#define SG_POLL_MS 100				/* longest wait between interrupt checks */
#define SG_BACKOFF_BASE_MS 250
#define SG_BACKOFF_MAX_MS 8000
#define SG_MAX_RETRY_AFTER_MS 30000 /* a longer Retry-After is reported, not waited */
#define SG_DETAIL_MAX 400			/* bytes of the API's message kept in errdetail */
#define SG_ANSWER_MAX_KB 4096		/* cap of an answer that is not data (see http.h) */

#if LIBCURL_VERSION_NUM < 0x074200
#error "switchgrid needs libcurl 7.66 or later"
#endif

/* kept for the life of the backend: see the file header */
static CURLM *sg_multi = NULL;
static CURL *sg_easy = NULL;

/* The response body under construction; grows without ever raising an error. */
typedef struct SgBuffer
{
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		limit;
	bool		too_large;
	bool		out_of_memory;
	MemoryContext cxt;
} SgBuffer;

/* What one attempt produced. */
typedef struct SgAttempt
{
	CURLcode	code;
	long		status;
	long		retry_after_ms;	/* -1 when the server gave no Retry-After */
	bool		connected;
	bool		started;		/* the transfer was handed to libcurl */
	bool		done;			/* the transfer ran to its end (well or not) */
	char		errbuf[CURL_ERROR_SIZE];
	SgBuffer	buf;
} SgAttempt;

static const char *
sg_method_name(SgHttpMethod method)
{
	switch (method)
	{
		case SG_HTTP_GET:
			return "GET";
		case SG_HTTP_POST:
			return "POST";
		case SG_HTTP_DELETE:
			return "DELETE";
	}
	return "?";
}

static void
sg_curl_setup(void)
{
	static bool global_done = false;

	if (!global_done)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not initialize libcurl")));
		global_done = true;
	}
	if (sg_multi == NULL)
	{
		sg_multi = curl_multi_init();
		if (sg_multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create an HTTP client")));
	}
	if (sg_easy == NULL)
	{
		sg_easy = curl_easy_init();
		if (sg_easy == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create an HTTP client")));
	}
}

/*
 * libcurl write callback.  It must not raise an error (a longjmp through
 * libcurl would leave it in an undefined state), so allocation failures and
 * the size cap are flagged and the transfer is aborted by returning 0.
 */
static size_t
sg_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	SgBuffer   *buf = (SgBuffer *) userdata;
	size_t		n = size * nmemb;

	if (buf->len + n > buf->limit)
	{
		buf->too_large = true;
		return 0;
	}
	if (buf->len + n + 1 > buf->cap)
	{
		size_t		newcap = Max(buf->cap * 2, buf->len + n + 1);
		char	   *p;

		newcap = Min(newcap, buf->limit + 1);
		p = MemoryContextAllocExtended(buf->cxt, newcap,
									   MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
		if (p == NULL)
		{
			buf->out_of_memory = true;
			return 0;
		}
		if (buf->len > 0)
			memcpy(p, buf->data, buf->len);
		if (buf->data)
			pfree(buf->data);
		buf->data = p;
		buf->cap = newcap;
	}
	memcpy(buf->data + buf->len, ptr, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return n;
}

/* Blanks every copy of the token in a header list, then frees it. */
static void
sg_free_headers(struct curl_slist *headers)
{
	struct curl_slist *h;

	for (h = headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}

/*
 * Builds the request headers.  With "send_token", the token is fetched,
 * placed in the list, and returned in *token for scrubbing messages; the
 * caller frees both with sg_free_headers() and sg_forget_token().
 */
static struct curl_slist *
sg_build_headers(SgHttpMethod method, int flags, bool send_token, char **token)
{
	const char *lines[5];
	int			nlines = 0;
	struct curl_slist *headers = NULL;
	char	   *tok = NULL;
	char	   *auth = NULL;
	bool		failed = false;
	int			i;

	if (token)
		*token = NULL;
	lines[nlines++] = "Accept: application/json";
	lines[nlines++] = "Expect:";
	if (method == SG_HTTP_POST)
		lines[nlines++] = "Content-Type: application/json";
	if (((flags & SG_HTTP_TEST_ENV) && sg_test_env) || (flags & SG_HTTP_TEST_ENV_ALWAYS))
		lines[nlines++] = "switchgrid-test-env: true";

	/* fetched first: it may raise an error, and nothing is allocated yet */
	if (send_token)
	{
		tok = sg_get_token();
		auth = psprintf("Authorization: Bearer %s", tok);
		lines[nlines++] = auth;
	}

	/* no error is raised until every copy of the token is wiped */
	for (i = 0; i < nlines && !failed; i++)
	{
		struct curl_slist *n = curl_slist_append(headers, lines[i]);

		if (n == NULL)
			failed = true;
		else
			headers = n;
	}
	if (auth != NULL)
	{
		explicit_bzero(auth, strlen(auth));
		pfree(auth);
	}
	if (failed)
	{
		sg_free_headers(headers);
		sg_forget_token(tok);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	if (token)
		*token = tok;
	return headers;
}

/*
 * Sets every option of one request on the (reset) easy handle.  Options that
 * protect the token are set on every request, never inherited.
 */
static void
sg_set_options(CURL *easy, SgHttpMethod method, const char *url,
			   const char *body, struct curl_slist *headers,
			   bool follow_redirects, SgAttempt *at)
{
	CURLcode	rc = CURLE_OK;

	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, at->errbuf);

	/*
	 * The options that keep the token safe must take effect: a libcurl that
	 * does not know one of them is refused rather than silently ignored.
	 */
	/* the SQL functions cap their inputs, so no URL comes near libcurl's 8 MB */
	if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the URL of this request is too long"),
				 errdetail("It is %zu bytes.", strlen(url))));
	rc |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	/*
	 * A URL is checked before it is fetched (https, or plain http to
	 * loopback); the target of a redirect cannot be, so a redirect may only
	 * lead to https.
	 */
#if LIBCURL_VERSION_NUM >= 0x075500
	rc |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
	rc |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
	rc |= curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS, (long) CURLPROTO_HTTPS);
#endif
	rc |= curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	/* the token is never sent along a redirect: see sg_perform() */
	rc |= curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, follow_redirects ? 1L : 0L);
	rc |= curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
	rc |= curl_easy_setopt(easy, CURLOPT_UNRESTRICTED_AUTH, 0L);
	if (rc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("the libcurl in use lacks an option switchgrid relies on"),
				 errdetail("libcurl %s.", curl_version())));
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) sg_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) sg_connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) at->buf.limit);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, SG_USER_AGENT);
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, sg_write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &at->buf);

	switch (method)
	{
		case SG_HTTP_GET:
			curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
			break;
		case SG_HTTP_POST:
			/*
			 * libcurl resends a request on its own when a reused connection
			 * turns out dead; a billable POST must never go twice, so it
			 * always takes a fresh connection.
			 */
			curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
			curl_easy_setopt(easy, CURLOPT_POST, 1L);
			curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body ? body : "");
			curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
							 (curl_off_t) (body ? strlen(body) : 0));
			break;
		case SG_HTTP_DELETE:
			curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "DELETE");
			break;
	}
}

/*
 * The size cap, in kB, of one answer: switchgrid.max_response_size for
 * downloaded data, and at most SG_ANSWER_MAX_KB for anything else (an Order,
 * an Ask, a page of Asks, a search), so that the worker, which holds the
 * answers of all its transfers in flight at once, stays within a known
 * budget.
 */
static int
sg_answer_limit_kb(int flags)
{
	if (flags & SG_HTTP_DATA)
		return sg_max_response_kb;
	return Min(sg_max_response_kb, SG_ANSWER_MAX_KB);
}

/*
 * Readies "at" for a new attempt on "easy": frees the previous attempt's
 * body, forgets its outcome, and sets every option of the request.  Every
 * attempt starts here, whether sg_perform() or sg_http_job_start() runs it.
 */
static void
sg_attempt_start(SgAttempt *at, CURL *easy, SgHttpMethod method, const char *url,
				 const char *body, struct curl_slist *headers, bool follow_redirects,
				 int flags)
{
	if (at->buf.data)
		pfree(at->buf.data);
	memset(at, 0, sizeof(SgAttempt));
	at->retry_after_ms = -1;
	at->buf.limit = (size_t) sg_answer_limit_kb(flags) * 1024;
	at->buf.cxt = CurrentMemoryContext;
	sg_set_options(easy, method, url, body, headers, follow_redirects, at);
}

/* Reads status, Retry-After and whether a connection was made. */
static void
sg_collect_info(CURL *easy, SgAttempt *at)
{
	curl_off_t	ra = -1;
	curl_off_t	connect_us = 0;
	long		request_bytes = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &at->status);
	if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
		at->retry_after_ms = (long) Min(ra, (curl_off_t) 86400) * 1000;
	if (curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us) == CURLE_OK)
		at->connected = connect_us > 0 || at->status > 0;
	/* a connection reused from the cache has no connect time of its own */
	if (curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_bytes) == CURLE_OK &&
		request_bytes > 0)
		at->connected = true;
}

/*
 * Runs one transfer to completion, checking for interrupts at least every
 * SG_POLL_MS.  On an interrupt the handle is detached, which closes a
 * half-done connection, and the error propagates as usual.
 */
static void
sg_drive_transfer(CURL *easy, SgAttempt *at)
{
	CURLMcode	mc;

	mc = curl_multi_add_handle(sg_multi, easy);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not start an HTTP request"),
				 errdetail_internal("%s", curl_multi_strerror(mc))));
	at->started = true;

	at->code = CURLE_OK;
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	PG_TRY();
	{
		int			running = 1;
		CURLMsg    *msg;
		int			queued;

		for (;;)
		{
			mc = curl_multi_perform(sg_multi, &running);
			if (mc != CURLM_OK)
				ereport(ERROR,
						(errcode(ERRCODE_SYSTEM_ERROR),
						 errmsg("HTTP request failed"),
						 errdetail_internal("%s", curl_multi_strerror(mc))));
			if (running == 0)
				break;
			mc = curl_multi_poll(sg_multi, NULL, 0, SG_POLL_MS, NULL);
			if (mc != CURLM_OK)
				ereport(ERROR,
						(errcode(ERRCODE_SYSTEM_ERROR),
						 errmsg("HTTP request failed"),
						 errdetail_internal("%s", curl_multi_strerror(mc))));
			CHECK_FOR_INTERRUPTS();
		}
		while ((msg = curl_multi_info_read(sg_multi, &queued)) != NULL)
		{
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy)
				at->code = msg->data.result;
		}
	}
	PG_FINALLY();
	{
		pgstat_report_wait_end();
		curl_multi_remove_handle(sg_multi, easy);
	}
	PG_END_TRY();

	at->done = true;
	sg_collect_info(easy, at);
}

/* Transport failures worth another try for an idempotent request. */
static bool
sg_transient_curl_error(CURLcode code)
{
	switch (code)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_PARTIAL_FILE:
			return true;
		default:
			return false;
	}
}

static bool
sg_transient_status(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/* Waits on the latch, so that a cancel or a shutdown ends the wait at once. */
static void
sg_sleep_ms(long ms)
{
	TimestampTz end = GetCurrentTimestamp() + ms * 1000L;

	for (;;)
	{
		long		left = (long) ((end - GetCurrentTimestamp()) / 1000);

		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static long
sg_backoff_ms(int attempt, long retry_after_ms)
{
	long		delay = SG_BACKOFF_BASE_MS << Min(attempt, 10);

	delay = Min(delay, SG_BACKOFF_MAX_MS);
	/* some jitter, so that several sessions do not retry in lockstep */
	delay += (long) (random() % (delay / 4 + 1));
	if (retry_after_ms > delay)
		delay = retry_after_ms;
	return delay;
}

/* Blanks, in place, every copy of "token" in "text" with '*'. */
static void
sg_blank(char *text, const char *token)
{
	char	   *p;

	if (token == NULL || token[0] == '\0')
		return;
	while ((p = strstr(text, token)) != NULL)
		memset(p, '*', strlen(token));
}

/*
 * The API token, or NULL if it cannot be read (not set, say).  Never raises
 * an error; the caller wipes the result with sg_forget_token().
 */
static char *
sg_token_or_null(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile token = NULL;

	PG_TRY();
	{
		token = sg_get_token();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		token = NULL;
	}
	PG_END_TRY();
	return token;
}

bool
sg_text_has_token(const char *text)
{
	char	   *token = sg_token_or_null();
	bool		found;

	if (token == NULL || token[0] == '\0')
		found = false;
	else
		found = strstr(text, token) != NULL;
	if (token != NULL)
		sg_forget_token(token);
	return found;
}

bool
sg_blank_token(char *text)
{
	char	   *token = sg_token_or_null();

	/* no token to read: the caller must not quote the text at all */
	if (token == NULL)
		return false;
	sg_blank(text, token);
	sg_forget_token(token);
	return true;
}

/*
 * Blanks, in place, every copy of "token" in a received body, embedded NUL
 * bytes or not.  Every body goes through here as soon as its transfer ends,
 * before anything parses, stores or quotes it: an answer that echoes the
 * token (in any field, or in a page from a proxy) cannot carry it further.
 */
static void
sg_scrub_body(SgBuffer *buf, const char *token)
{
	size_t		tlen;
	size_t		i;

	if (token == NULL || token[0] == '\0' || buf->data == NULL)
		return;
	tlen = strlen(token);
	i = 0;
	while (i + tlen <= buf->len)
	{
		char	   *p = memchr(buf->data + i, token[0], buf->len - tlen + 1 - i);

		if (p == NULL)
			break;
		i = p - buf->data;
		if (memcmp(p, token, tlen) == 0)
		{
			memset(p, '*', tlen);
			i += tlen;
		}
		else
			i++;
	}
}

/*
 * Returns a printable, bounded copy of the API's message for errdetail, with
 * any occurrence of the token blanked out.  The API answers errors with JSON
 * carrying "message"; anything else (an HTML page from a proxy) is shown as
 * its first bytes.
 */
static char *
sg_error_detail(const SgBuffer *buf, const char *token)
{
	char	   *msg = NULL;
	char	   *p;

	if (buf->len > 0)
	{
		msg = sg_json_top_level_string(buf->data, buf->len, "message");
		if (msg == NULL)
			msg = sg_json_top_level_string(buf->data, buf->len, "error");
		if (msg == NULL)
		{
			/* not JSON (an HTML page from a proxy, say): printable ASCII only */
			msg = pnstrdup(buf->data, Min(buf->len, 4 * SG_DETAIL_MAX));
			for (p = msg; *p; p++)
			{
				if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e)
					*p = ' ';
			}
		}
	}
	if (msg == NULL)
		return pstrdup("(empty response)");
	for (p = msg; *p; p++)
	{
		if ((unsigned char) *p < 0x20)
			*p = ' ';
	}
	/* blank every copy of the token before anything is cut */
	sg_blank(msg, token);
	if (strlen(msg) > SG_DETAIL_MAX)
	{
		int			keep = pg_mbcliplen(msg, (int) strlen(msg), SG_DETAIL_MAX - 3);

		strcpy(msg + keep, "...");
	}
	return msg;
}

/* Raises 54000 for an answer over the cap of its attempt. */
static void
sg_report_too_large(const SgAttempt *at, const char *what)
{
	int			limit_kb = (int) (at->buf.limit / 1024);

	if (limit_kb >= sg_max_response_kb)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("response from Switchgrid for %s exceeds switchgrid.max_response_size", what),
				 errdetail("The limit is %d kB.", sg_max_response_kb),
				 errhint("A superuser can raise switchgrid.max_response_size.")));
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("response from Switchgrid for %s exceeds %d kB", what, limit_kb),
			 errdetail("An answer that is not downloaded data (an Order, an Ask, a search) is limited to %d kB, or to switchgrid.max_response_size if smaller.",
					   SG_ANSWER_MAX_KB)));
}

/*
 * Raises the error that fits a failed attempt.  "detail" has already been
 * scrubbed of the token.
 */
static void
sg_report_failure(SgHttpMethod method, const char *path, const char *what,
				  const SgAttempt *at, const char *detail)
{
	const char *m = sg_method_name(method);

	if (at->buf.too_large || at->code == CURLE_FILESIZE_EXCEEDED)
		sg_report_too_large(at, what);
	if (at->buf.out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while receiving %s", what)));

	if (at->code != CURLE_OK)
	{
		const char *cerr = at->errbuf[0] ? at->errbuf : curl_easy_strerror(at->code);

		/* a POST whose answer is lost is warned about by sg_perform() */
		switch (at->code)
		{
			case CURLE_OPERATION_TIMEDOUT:
				if (!at->connected)
					ereport(ERROR,
							(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
							 errmsg("could not connect to the Switchgrid API for %s", what),
							 errdetail("No connection within switchgrid.connect_timeout (%d ms).",
									   sg_connect_timeout_ms)));
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("timed out waiting for Switchgrid on %s", what),
						 errdetail("No complete answer to %s %s within switchgrid.timeout (%d ms).",
								   m, path, sg_timeout_ms),
						 errhint("Raise switchgrid.timeout for large downloads.")));
				break;
			case CURLE_COULDNT_CONNECT:
			case CURLE_COULDNT_RESOLVE_HOST:
			case CURLE_COULDNT_RESOLVE_PROXY:
			case CURLE_SSL_CONNECT_ERROR:
			case CURLE_PEER_FAILED_VERIFICATION:
			case CURLE_SSL_CACERT_BADFILE:
				ereport(ERROR,
						(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
						 errmsg("could not connect to the Switchgrid API for %s", what),
						 errdetail_internal("%s", cerr)));
				break;
			case CURLE_PARTIAL_FILE:
			case CURLE_BAD_CONTENT_ENCODING:
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("incomplete response from Switchgrid for %s", what),
						 errdetail_internal("%s", cerr)));
				break;
			case CURLE_UNSUPPORTED_PROTOCOL:
			case CURLE_URL_MALFORMAT:
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid URL for %s", what),
						 errdetail_internal("%s", cerr)));
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not complete %s with Switchgrid", what),
						 errdetail_internal("%s", cerr)));
		}
	}

	if (at->status == 401 || at->status == 403)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("Switchgrid refused the API token for %s (HTTP %ld)", what, at->status),
				 errdetail("HTTP %ld on %s %s: %s", at->status, m, path, detail),
				 errhint("Check switchgrid.api_token_file (or switchgrid.api_token).")));
	if (at->status == 404)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("%s not found", what),
				 errdetail("HTTP 404 on %s %s: %s", m, path, detail)));
	if (at->status == 429)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("Switchgrid rate limit reached for %s (HTTP 429)", what),
				 errdetail("HTTP 429 on %s %s: %s", m, path, detail),
				 errhint("Retry later, or lower the request rate.")));
	if (at->status >= 500)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("Switchgrid failed on %s (HTTP %ld)", what, at->status),
				 errdetail("HTTP %ld on %s %s: %s", at->status, m, path, detail)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("Switchgrid rejected %s (HTTP %ld)", what, at->status),
			 errdetail("HTTP %ld on %s %s: %s", at->status, m, path, detail)));
}

/*
 * What a POST whose answer is lost or unusable leaves behind: the server may
 * have acted on it.  The WARNING says so, or "lost" (given by the caller,
 * who knows what the POST creates) does, given what arrived of the body.
 */
static void
sg_answer_lost(SgAttempt *at, const char *what, SgLostAnswerHook lost)
{
	if (lost != NULL)
		lost(at->buf.data ? at->buf.data : "", at->buf.data ? at->buf.len : 0);
	else
		ereport(WARNING,
				(errmsg("the answer to %s was lost; Switchgrid may have acted on it", what),
				 errhint("Check with switchgrid_asks() or switchgrid_order_status() before trying again.")));
}

/*
 * The common engine of sg_api_call(), sg_api_post() and sg_fetch_url().
 * "path" is what error messages show of the URL (never a query string).
 *
 * A POST that reached the server but whose answer cannot be used (lost,
 * cut, too large, interrupted by a cancel or statement_timeout) is passed
 * to sg_answer_lost() before the error propagates, whatever the error.
 */
static SgHttpResponse *
sg_perform(SgHttpMethod method, const char *url, const char *path,
		   const char *body, int flags, bool send_token, const char *what,
		   SgLostAnswerHook lost)
{
	struct curl_slist *volatile headers = NULL;
	char	   *volatile token = NULL;
	SgHttpResponse *volatile resp = NULL;
	SgAttempt  *at = palloc0(sizeof(SgAttempt));
	int			max_attempts = (method == SG_HTTP_GET) ? sg_max_retries + 1 : 1;
	MemoryContext cxt = CurrentMemoryContext;

	sg_curl_setup();

	PG_TRY();
	{
		int			attempt;
		char	   *detail = NULL;
		char	   *tok = NULL;

		headers = sg_build_headers(method, flags, send_token, &tok);
		/* without it in the request, the token is still blanked in the answer */
		token = send_token ? tok : sg_token_or_null();

		for (attempt = 0;; attempt++)
		{
			bool		retry;

			sg_attempt_start(at, sg_easy, method, url, body, headers, !send_token, flags);
			sg_drive_transfer(sg_easy, at);
			sg_scrub_body(&at->buf, token);

			if (at->code == CURLE_OK && at->status >= 200 && at->status < 300)
				break;
			if (at->code == CURLE_OK && at->status == 404 && (flags & SG_HTTP_ALLOW_404))
				break;

			retry = attempt + 1 < max_attempts &&
				!at->buf.too_large && !at->buf.out_of_memory &&
				(at->code == CURLE_OK ? sg_transient_status(at->status)
				 : sg_transient_curl_error(at->code));
			if (retry && at->retry_after_ms > SG_MAX_RETRY_AFTER_MS)
				retry = false;
			if (!retry)
			{
				detail = sg_error_detail(&at->buf, token);
				break;
			}
			elog(DEBUG1, "switchgrid: retrying %s %s (attempt %d of %d)",
				 sg_method_name(method), path, attempt + 2, max_attempts);
			sg_sleep_ms(sg_backoff_ms(attempt, at->retry_after_ms));
		}

		if (detail != NULL)
		{
			/* wipe the token before anything is reported */
			sg_free_headers(headers);
			headers = NULL;
			sg_forget_token(token);
			token = NULL;
			sg_report_failure(method, path, what, at, detail);
		}

		resp = palloc(sizeof(SgHttpResponse));
		resp->status = at->status;
		resp->where = psprintf("%s %s", sg_method_name(method), path);
		if (at->buf.data == NULL)
			at->buf.data = palloc0(1);
		resp->body = at->buf.data;
		resp->len = at->buf.len;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();

		if (at->started && !at->done)
		{
			/* interrupted mid-transfer: what was sent, and what arrived */
			sg_collect_info(sg_easy, at);
			sg_scrub_body(&at->buf, token);
		}
		if (headers != NULL)
			sg_free_headers(headers);
		headers = NULL;
		if (token != NULL)
			sg_forget_token(token);
		token = NULL;

		/* a complete answer with an error status says the POST was refused */
		if (method == SG_HTTP_POST && at->started && at->connected &&
			!(at->done && at->code == CURLE_OK && !at->buf.too_large &&
			  !at->buf.out_of_memory && at->status >= 300))
			sg_answer_lost(at, what, lost);
		ReThrowError(edata);
	}
	PG_END_TRY();

	if (headers != NULL)
		sg_free_headers(headers);
	if (token != NULL)
		sg_forget_token(token);
	pfree(at);
	return resp;
}

char *
sg_api_url(const char *path, const char *query)
{
	StringInfoData url;
	size_t		blen = strlen(sg_base_url);

	while (blen > 0 && sg_base_url[blen - 1] == '/')
		blen--;
	initStringInfo(&url);
	appendBinaryStringInfo(&url, sg_base_url, (int) blen);
	appendStringInfoString(&url, path);
	if (query != NULL && query[0] != '\0')
		appendStringInfo(&url, "?%s", query);
	return url.data;
}

SgHttpResponse *
sg_api_call(SgHttpMethod method, const char *path, const char *query,
			const char *body, int flags, const char *what)
{
	return sg_perform(method, sg_api_url(path, query), path, body, flags, true, what,
					  NULL);
}

SgHttpResponse *
sg_api_post(const char *path, const char *body, int flags, const char *what,
			SgLostAnswerHook lost)
{
	return sg_perform(SG_HTTP_POST, sg_api_url(path, NULL), path, body, flags, true,
					  what, lost);
}

/*
 * Splits a URL into scheme, host and port (the default port filled in), all
 * lower case and palloc'd.  Returns false if the URL cannot be parsed.
 */
static bool
sg_url_origin(const char *url, char **scheme, char **host, char **port)
{
	CURLU	   *h = curl_url();
	char	   *s = NULL,
			   *ho = NULL,
			   *po = NULL;
	bool		ok = false;

	if (h == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(h, CURLUPART_SCHEME, &s, 0) == CURLUE_OK &&
		curl_url_get(h, CURLUPART_HOST, &ho, 0) == CURLUE_OK &&
		curl_url_get(h, CURLUPART_PORT, &po, CURLU_DEFAULT_PORT) == CURLUE_OK)
	{
		*scheme = pstrdup(s);
		*host = pstrdup(ho);
		*port = pstrdup(po);
		ok = true;
	}
	curl_free(s);
	curl_free(ho);
	curl_free(po);
	curl_url_cleanup(h);
	if (ok)
	{
		char	   *p;

		for (p = *scheme; *p; p++)
			*p = pg_tolower((unsigned char) *p);
		for (p = *host; *p; p++)
			*p = pg_tolower((unsigned char) *p);
	}
	return ok;
}

bool
sg_url_is_api(const char *url)
{
	char	   *scheme,
			   *host,
			   *port;
	char	   *bscheme,
			   *bhost,
			   *bport;

	if (!sg_url_origin(url, &scheme, &host, &port))
		return false;
	if (!sg_url_origin(sg_base_url, &bscheme, &bhost, &bport))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid switchgrid.base_url")));
	return strcmp(scheme, bscheme) == 0 && strcmp(host, bhost) == 0 &&
		strcmp(port, bport) == 0;
}

/*
 * Whether a URL the API handed us (a dataUrl) may be fetched: the rule of
 * switchgrid.base_url, https, or plain http to this machine only.
 */
static bool
sg_data_url_allowed(const char *url)
{
	char	   *scheme,
			   *host,
			   *port;

	if (!sg_url_origin(url, &scheme, &host, &port))
		return false;
	if (strcmp(scheme, "https") == 0)
		return true;
	return strcmp(scheme, "http") == 0 && sg_host_is_loopback(host);
}

static void
sg_refuse_data_url(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("Switchgrid returned an unusable data URL for %s", what),
			 errdetail("A data URL must be https, or plain http to localhost, 127.0.0.0/8 or [::1].")));
}

SgHttpResponse *
sg_fetch_url(const char *url, const char *what)
{
	bool		same_origin;

	if (!sg_data_url_allowed(url))
		sg_refuse_data_url(what);
	same_origin = sg_url_is_api(url);
	return sg_perform(SG_HTTP_GET, url, same_origin ? "(API data URL)" : "(data URL)",
					  NULL, SG_HTTP_DATA, same_origin, what, NULL);
}

/*
 * What a job keeps while it runs: its own easy handle and header list (with
 * the token, wiped at the end), the token to blank in its answer, and its
 * place in the list of transfers in flight.  Allocated in the memory
 * context that was current when the job started, where its answer goes too.
 */
typedef struct SgJobState
{
	dlist_node	node;			/* in sg_jobs_running */
	SgHttpJob  *job;
	CURL	   *easy;
	struct curl_slist *headers;
	char	   *token;			/* sent with it, or NULL */
	MemoryContext cxt;
	SgAttempt	at;
} SgJobState;

/* The worker's transfers in flight, on sg_multi. */
static dlist_head sg_jobs_running = DLIST_STATIC_INIT(sg_jobs_running);
static int	sg_jobs_nrunning = 0;

/*
 * Turns a finished transfer into the job's response or error.  The error is
 * the one sg_perform() would raise, caught and kept instead.
 */
static void
sg_finish_job(SgHttpJob *job, const char *token)
{
	SgJobState *js = (SgJobState *) job->priv;
	SgAttempt  *at = &js->at;
	MemoryContext cxt = CurrentMemoryContext;

	sg_collect_info(js->easy, at);
	sg_scrub_body(&at->buf, token);
	job->retry_after_ms = at->retry_after_ms;
	if (at->code == CURLE_OK &&
		((at->status >= 200 && at->status < 300) ||
		 (at->status == 404 && (job->flags & SG_HTTP_ALLOW_404))))
	{
		job->resp = palloc(sizeof(SgHttpResponse));
		job->resp->status = at->status;
		job->resp->where = psprintf("GET %s", job->path);
		job->resp->body = at->buf.data ? at->buf.data : palloc0(1);
		job->resp->len = at->buf.len;
		return;
	}
	PG_TRY();
	{
		sg_report_failure(SG_HTTP_GET, job->path, job->what, at,
						  sg_error_detail(&at->buf, token));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		job->error = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
}

/* Gives a job the error sg_fetch_url() raises for a URL it will not fetch. */
static void
sg_job_refuse_url(SgHttpJob *job)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		sg_refuse_data_url(job->what);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		job->error = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	job->retry_after_ms = -1;
}

/* Releases what a job holds outside PostgreSQL's allocator, token wiped. */
static void
sg_job_release(SgJobState *js)
{
	if (js->easy != NULL)
	{
		curl_multi_remove_handle(sg_multi, js->easy);
		curl_easy_cleanup(js->easy);
		js->easy = NULL;
	}
	if (js->headers != NULL)
		sg_free_headers(js->headers);
	js->headers = NULL;
	if (js->token != NULL)
		sg_forget_token(js->token);
	js->token = NULL;
}

bool
sg_http_job_start(SgHttpJob *job)
{
	SgJobState *volatile js;

	sg_curl_setup();
	job->resp = NULL;
	job->error = NULL;
	job->retry_after_ms = -1;
	js = palloc0(sizeof(SgJobState));
	js->job = job;
	js->cxt = CurrentMemoryContext;
	job->priv = js;
	if (!job->send_token && !sg_data_url_allowed(job->url))
	{
		/* refused like sg_fetch_url() refuses it, and never sent */
		sg_job_refuse_url(job);
		return false;
	}

	PG_TRY();
	{
		char	   *tok = NULL;

		/* an Ask created in the test environment is polled there, whatever the setting now */
		js->headers = sg_build_headers(SG_HTTP_GET,
									   (job->flags & SG_HTTP_TEST_ENV) ? SG_HTTP_TEST_ENV_ALWAYS : 0,
									   job->send_token, &tok);
		js->token = tok;
		js->easy = curl_easy_init();
		if (js->easy == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create an HTTP client")));
		sg_attempt_start(&js->at, js->easy, SG_HTTP_GET, job->url, NULL, js->headers,
						 !job->send_token, job->flags);
		curl_easy_setopt(js->easy, CURLOPT_PRIVATE, (void *) js);
		if (curl_multi_add_handle(sg_multi, js->easy) != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not start an HTTP request")));
	}
	PG_CATCH();
	{
		sg_job_release(js);
		PG_RE_THROW();
	}
	PG_END_TRY();
	js->at.started = true;
	dlist_push_tail(&sg_jobs_running, &js->node);
	sg_jobs_nrunning++;
	return true;
}

int
sg_http_jobs_running(void)
{
	return sg_jobs_nrunning;
}

/*
 * Hands every finished transfer to "done", after releasing its handle and
 * headers.  Returns how many there were.
 */
static int
sg_http_jobs_collect(SgJobDoneFn done, void *done_arg)
{
	CURLMsg    *msg;
	int			queued;
	int			finished = 0;

	while ((msg = curl_multi_info_read(sg_multi, &queued)) != NULL)
	{
		SgJobState *js;
		SgHttpJob  *job;
		MemoryContext old;
		char	   *token;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &js);
		job = js->job;
		js->at.code = msg->data.result;
		js->at.done = true;
		dlist_delete(&js->node);
		sg_jobs_nrunning--;
		Assert(sg_jobs_nrunning >= 0);
		curl_multi_remove_handle(sg_multi, js->easy);

		old = MemoryContextSwitchTo(js->cxt);
		/* without it in the request, the token is still blanked in the answer */
		token = js->token != NULL ? js->token : sg_token_or_null();
		sg_finish_job(job, token);
		if (js->token == NULL && token != NULL)
			sg_forget_token(token);
		sg_job_release(js);
		MemoryContextSwitchTo(old);

		finished++;
		done(job, done_arg);
	}
	return finished;
}

int
sg_http_jobs_drive(long timeout_ms, SgJobDoneFn done, void *done_arg)
{
	int			running;
	int			finished;

	if (sg_jobs_nrunning == 0)
		return 0;
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	(void) curl_multi_perform(sg_multi, &running);
	pgstat_report_wait_end();
	finished = sg_http_jobs_collect(done, done_arg);
	if (finished == 0 && sg_jobs_nrunning > 0 && timeout_ms > 0)
	{
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		(void) curl_multi_poll(sg_multi, NULL, 0,
							   (int) Min(timeout_ms, (long) SG_POLL_MS), NULL);
		(void) curl_multi_perform(sg_multi, &running);
		pgstat_report_wait_end();
		finished = sg_http_jobs_collect(done, done_arg);
	}
	if (!PostmasterIsAlive())
		proc_exit(1);
	return finished;
}

void
sg_http_jobs_abort(void)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &sg_jobs_running)
	{
		SgJobState *js = dlist_container(SgJobState, node, iter.cur);

		dlist_delete(&js->node);
		sg_job_release(js);
	}
	sg_jobs_nrunning = 0;
}

char *
sg_url_escape(const char *value)
{
	char	   *esc;
	char	   *result;

	sg_curl_setup();
	esc = curl_easy_escape(sg_easy, value, (int) strlen(value));
	if (esc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	result = pstrdup(esc);
	curl_free(esc);
	return result;
}
