/*-------------------------------------------------------------------------
 * http.h
 *	  The HTTP boundary: every byte exchanged with the Switchgrid API goes
 *	  through the functions declared here.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_HTTP_H
#define SWITCHGRID_HTTP_H

typedef enum SgHttpMethod
{
	SG_HTTP_GET,
	SG_HTTP_POST,
	SG_HTTP_DELETE
} SgHttpMethod;

/* flags for sg_api_call() */
#define SG_HTTP_TEST_ENV	0x01	/* send "switchgrid-test-env" if enabled */
#define SG_HTTP_ALLOW_404	0x02	/* return a 404 instead of raising it */
#define SG_HTTP_TEST_ENV_ALWAYS 0x04	/* send "switchgrid-test-env" regardless */
#define SG_HTTP_DATA		0x08	/* a download of data: see below */

/*
 * Every body received is capped: a download of data (SG_HTTP_DATA, and
 * every sg_fetch_url()) at switchgrid.max_response_size, any other answer
 * (an Order, an Ask, a page of Asks, a search) at the smaller of that and
 * 4 MB.  An answer over its cap raises 54000.  Every copy of the API token
 * in a body is blanked ('*') before the body is returned, whatever field
 * it is in.
 */

typedef struct SgHttpResponse
{
	long		status;			/* HTTP status */
	const char *where;			/* method and path as messages show them */
	char	   *body;			/* palloc'd, NUL-terminated */
	size_t		len;			/* bytes in body, without the NUL */
} SgHttpResponse;

/*
 * Calls the API: "path" (e.g. "/order/<id>") is appended to
 * switchgrid.base_url, "query" (already escaped, or NULL) follows a '?',
 * "body" is JSON text for a POST.  "what" names the call in error messages,
 * e.g. "order 47608cf7-...".
 *
 * Returns a 2xx response (or a 404 with SG_HTTP_ALLOW_404); any other
 * outcome raises an error with a documented SQLSTATE.  GET requests are
 * retried on 429, 502, 503, 504 and connection failures; a POST or DELETE is
 * never sent twice.  The body is palloc'd in the current memory context.
 */
extern SgHttpResponse *sg_api_call(SgHttpMethod method, const char *path,
								   const char *query, const char *body,
								   int flags, const char *what);

/*
 * Called when a POST reached the server but its answer cannot be used (lost,
 * cut short, over its cap, interrupted by a cancel), with whatever arrived of
 * the body (token blanked, maybe empty, not NUL-terminated at "len"), before
 * the error propagates.  It warns the user that Switchgrid may have acted.
 */
typedef void (*SgLostAnswerHook) (const char *body, size_t len);

/*
 * A POST through sg_api_call(), except that an answer that cannot be used
 * is passed to "lost" instead of the generic WARNING.
 */
extern SgHttpResponse *sg_api_post(const char *path, const char *body, int flags,
								   const char *what, SgLostAnswerHook lost);

/*
 * GETs an absolute URL returned by the API (a dataUrl).  The URL must obey
 * the rule of switchgrid.base_url (https, or plain http to loopback only),
 * else 08P01 is raised before any request.  The bearer token is sent only
 * if the URL has the same scheme, host and port as switchgrid.base_url.
 * Same contract as sg_api_call() otherwise.
 */
extern SgHttpResponse *sg_fetch_url(const char *url, const char *what);

/*
 * One GET of the worker, its way of talking to the API: many transfers at
 * once on the backend's multi handle, each started on its own
 * (sg_http_job_start()) and handed back as soon as it ends
 * (sg_http_jobs_drive()), while the others go on.
 */
typedef struct SgHttpJob
{
	/* set by the caller */
	char	   *url;
	const char *path;			/* what messages show of the URL */
	const char *what;			/* names the call in messages */
	bool		send_token;
	int			flags;			/* SG_HTTP_ALLOW_404, SG_HTTP_TEST_ENV, SG_HTTP_DATA */
	/* a job sent without the token must have a URL sg_fetch_url() accepts */
	/* set when it ends */
	SgHttpResponse *resp;		/* on success */
	struct ErrorData *error;	/* otherwise: what sg_api_call() would raise */
	long		retry_after_ms; /* the server's Retry-After, or -1 */
	/* private */
	void	   *priv;
} SgHttpJob;

/* Called by sg_http_jobs_drive() for each job as soon as it has its outcome. */
typedef void (*SgJobDoneFn) (SgHttpJob *job, void *arg);

/*
 * Starts one job, tried once: a failure is returned in job->error when it
 * ends, never raised, so the caller can schedule its own retry.  Everything
 * the job allocates, its answer included, goes in the current memory
 * context, which must live until the job has ended (or
 * sg_http_jobs_abort()).  Returns false, with job->error set, for a URL
 * sg_fetch_url() would refuse: that job is never sent and has ended
 * already.  Raises an error, with nothing left running, if the job cannot
 * start (no token configured, say).  Must be called outside a transaction.
 */
extern bool sg_http_job_start(SgHttpJob *job);

/* How many started jobs have not ended yet. */
extern int	sg_http_jobs_running(void);

/*
 * Drives the jobs in flight, waiting at most "timeout_ms" (and at most
 * SG_POLL_MS) for one to end, and calls "done" with each that ended, as
 * soon as it has: the caller can record it, with a transaction of its own,
 * and free its memory, while the others wait in libcurl.  Returns how many
 * ended.  Must be called outside a transaction.
 */
extern int	sg_http_jobs_drive(long timeout_ms, SgJobDoneFn done, void *done_arg);

/*
 * Detaches every job in flight, without an outcome; to be called before
 * their memory goes, when an error ends the caller's work.
 */
extern void sg_http_jobs_abort(void);

/*
 * Blanks, in place, every copy of the API token in "text".  Never raises an
 * error; returns false if the token could not be read, and then the caller
 * must not quote "text" at all.
 */
extern bool sg_blank_token(char *text);

/* Whether "text" holds the API token (false if no token is set). */
extern bool sg_text_has_token(const char *text);

/* The URL of an API path, palloc'd. */
extern char *sg_api_url(const char *path, const char *query);

/* Whether the bearer token may be sent to this URL (same origin as the API). */
extern bool sg_url_is_api(const char *url);

/* Percent-encodes a query-string value; the result is palloc'd. */
extern char *sg_url_escape(const char *value);

#endif							/* SWITCHGRID_HTTP_H */
