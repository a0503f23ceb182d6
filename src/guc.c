/*-------------------------------------------------------------------------
 * guc.c
 *	  Definitions of the switchgrid.* settings and reading of the API token.
 *
 * The token and anything that decides where it is sent (base_url, the token
 * file) can only be set by superusers; the token and its file are also
 * GUC_SUPERUSER_ONLY, so SHOW, current_setting() and pg_settings hide them
 * from everyone else.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/guc.h"

#include "compat.h"
#include "guc.h"

#define SG_DEFAULT_BASE_URL "https://app.switchgrid.tech/enedis/v2"
#define SG_MAX_TOKEN_FILE_SIZE 4096

char	   *sg_base_url = NULL;
char	   *sg_api_token = NULL;
char	   *sg_api_token_file = NULL;
bool		sg_test_env = false;
int			sg_timeout_ms = 30000;
int			sg_connect_timeout_ms = 10000;
int			sg_max_retries = 3;
int			sg_max_response_kb = 64 * 1024;
char	   *sg_database = NULL;
int			sg_poll_interval_ms = 30000;
int			sg_max_concurrency = 4;
int			sg_max_requests_per_second = 5;
bool		sg_auto_fetch = true;
int			sg_webhook_retention_min = 30 * 24 * 60;
int			sg_max_orders_per_xact = 100;
int			sg_max_orders_per_day = 0;

/*
 * Whether "host[:port]" (of length len) names this machine: localhost,
 * [::1] or a dotted 127.x.y.z address, and nothing else.
 */
static bool
sg_is_loopback_authority(const char *a, size_t len)
{
	size_t		hlen;
	const char *p;
	int			dots = 0;

	if (len >= 5 && strncmp(a, "[::1]", 5) == 0)
		return len == 5 || a[5] == ':';
	hlen = 0;
	while (hlen < len && a[hlen] != ':')
		hlen++;
	if (hlen == 9 && pg_strncasecmp(a, "localhost", 9) == 0)
		return true;
	if (hlen < 7 || strncmp(a, "127.", 4) != 0)
		return false;
	for (p = a; p < a + hlen; p++)
	{
		if (*p == '.')
			dots++;
		else if (*p < '0' || *p > '9')
			return false;
	}
	return dots == 3;
}

bool
sg_host_is_loopback(const char *host)
{
	/* a host holds no ':' outside [::1], so no port can be mistaken for one */
	if (host[0] != '[' && strchr(host, ':') != NULL)
		return false;
	return sg_is_loopback_authority(host, strlen(host));
}

/*
 * base_url must be an absolute http(s) URL without query or fragment; the
 * paths of the API are appended to it.
 */
static bool
sg_check_base_url(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL)
		return true;
	if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)
	{
		GUC_check_errdetail("The URL must start with \"https://\" or \"http://\".");
		return false;
	}
	if (strpbrk(v, "?# \t\r\n") != NULL)
	{
		GUC_check_errdetail("The URL must not contain a query, a fragment or white space.");
		return false;
	}

	/* user:password@host is refused: it hides the real host */
	{
		const char *auth = strstr(v, "://") + 3;
		size_t		alen = strcspn(auth, "/");

		if (memchr(auth, '@', alen) != NULL || alen == 0)
		{
			GUC_check_errdetail("The URL must name a host, without user information.");
			return false;
		}

		/*
		 * The token would travel in clear text over plain http: allowed only
		 * to this machine (the bundled simulator, a local proxy).
		 */
		if (strncmp(v, "http://", 7) == 0 && !sg_is_loopback_authority(auth, alen))
		{
			GUC_check_errdetail("Plain http is allowed only to localhost, 127.0.0.0/8 or [::1]; the API token would travel in clear text.");
			return false;
		}
	}
	return true;
}

/* SHOW and pg_settings never display the token, even to superusers. */
static const char *
sg_show_token(void)
{
	return (sg_api_token != NULL && sg_api_token[0] != '\0') ? "********" : "";
}

void
sg_define_gucs(void)
{
	/* the worker's settings, reloadable */
	DefineCustomIntVariable("switchgrid.poll_interval",
							"Longest wait between two polls of a pending Order.",
							"New Orders are polled sooner: the wait doubles from half a second up to this.",
							&sg_poll_interval_ms,
							30000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("switchgrid.max_concurrency",
							"How many HTTP requests the worker runs at once.",
							NULL,
							&sg_max_concurrency,
							4, 1, 64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("switchgrid.max_requests_per_second",
							"How many HTTP requests the worker starts per second at most (0: no limit).",
							NULL,
							&sg_max_requests_per_second,
							5, 0, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("switchgrid.webhook_retention",
							"How long webhook events are kept in switchgrid.webhook_events.",
							"The worker deletes older events; 0 keeps them forever.",
							&sg_webhook_retention_min,
							30 * 24 * 60, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("switchgrid.auto_fetch",
							 "Whether the worker downloads the results of finished requests.",
							 NULL,
							 &sg_auto_fetch,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	/* fixed at server start */
	DefineCustomStringVariable("switchgrid.database",
							   "Database in which the worker tracks Orders.",
							   NULL,
							   &sg_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("switchgrid.base_url",
							   "Base URL of the Switchgrid API.",
							   "Only superusers can change it, since the API token is sent there.",
							   &sg_base_url,
							   SG_DEFAULT_BASE_URL,
							   PGC_SUSET,
							   0,
							   sg_check_base_url, NULL, NULL);

	DefineCustomStringVariable("switchgrid.api_token",
							   "Switchgrid API token (prefer switchgrid.api_token_file).",
							   "Visible to and settable by superusers only.",
							   &sg_api_token,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, sg_show_token);

	DefineCustomStringVariable("switchgrid.api_token_file",
							   "File, read by the server, that holds the Switchgrid API token.",
							   "Used when switchgrid.api_token is empty.",
							   &sg_api_token_file,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("switchgrid.test_env",
							 "Sends \"switchgrid-test-env: true\" so that Asks and their Orders are not billed.",
							 NULL,
							 &sg_test_env,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("switchgrid.timeout",
							"Maximum time for one HTTP request to the Switchgrid API.",
							NULL,
							&sg_timeout_ms,
							30000, 100, 3600 * 1000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("switchgrid.connect_timeout",
							"Maximum time to establish a connection to the Switchgrid API.",
							NULL,
							&sg_connect_timeout_ms,
							10000, 100, 300 * 1000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("switchgrid.max_retries",
							"How many times a failed GET is retried.",
							"Only GET requests are retried, on HTTP 429, 502, 503, 504 and connection failures.",
							&sg_max_retries,
							3, 0, 10,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	/* the billing budget (budget.c): only a superuser may raise it */
	DefineCustomIntVariable("switchgrid.max_orders_per_transaction",
							"How many Orders one transaction may place at most.",
							"Every POST /order counts, even one whose subtransaction rolled back. "
							"It cannot be switched off: the Orders of a transaction are tracked until it ends.",
							&sg_max_orders_per_xact,
							100, 1, SG_MAX_ORDERS_PER_XACT_LIMIT,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("switchgrid.max_orders_per_day",
							"How many Orders may be placed in any 24 hours (0: no limit).",
							"Counted from the Orders recorded in switchgrid.orders, and those handed to the worker, of the last 24 hours.",
							&sg_max_orders_per_day,
							0, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("switchgrid.max_response_size",
							"Largest response accepted from the Switchgrid API.",
							NULL,
							&sg_max_response_kb,
							64 * 1024, 1, 1024 * 1024 - 1,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/*
 * Reads the token file.  The file is read at each use so that a rotated
 * token takes effect without a reload; it is a few bytes.
 */
static char *
sg_read_token_file(const char *path)
{
	static bool warned_mode = false;
	FILE	   *fp;
	char	   *buf;
	size_t		n;
	struct stat st;

	fp = AllocateFile(path, "r");
	if (fp == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("could not read the Switchgrid API token file: %m"),
				 errhint("Check switchgrid.api_token_file and the file's permissions.")));
	/* said once per process, not at every call */
	if (!warned_mode && fstat(fileno(fp), &st) == 0 &&
		(st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		warned_mode = true;
		ereport(WARNING,
				(errmsg("the Switchgrid API token file is readable by other operating-system users"),
				 errhint("Make it readable by the server's owner only (chmod 600).")));
	}

	buf = palloc0(SG_MAX_TOKEN_FILE_SIZE + 1);
	n = fread(buf, 1, SG_MAX_TOKEN_FILE_SIZE + 1, fp);
	FreeFile(fp);
	if (n > SG_MAX_TOKEN_FILE_SIZE)
	{
		explicit_bzero(buf, SG_MAX_TOKEN_FILE_SIZE + 1);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the Switchgrid API token file is too large"),
				 errdetail("The file must hold the token alone, at most %d bytes.",
						   SG_MAX_TOKEN_FILE_SIZE)));
	}
	buf[n] = '\0';

	/* trim surrounding white space, typically a final newline */
	while (n > 0 && isspace((unsigned char) buf[n - 1]))
		buf[--n] = '\0';
	if (n > 0 && isspace((unsigned char) buf[0]))
	{
		size_t		start = 0;

		while (start < n && isspace((unsigned char) buf[start]))
			start++;
		memmove(buf, buf + start, n - start + 1);
	}
	return buf;
}

char *
sg_get_token(void)
{
	char	   *token;
	const char *p;

	if (sg_api_token != NULL && sg_api_token[0] != '\0')
		token = pstrdup(sg_api_token);
	else if (sg_api_token_file != NULL && sg_api_token_file[0] != '\0')
		token = sg_read_token_file(sg_api_token_file);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no Switchgrid API token is configured"),
				 errhint("A superuser can set switchgrid.api_token_file in postgresql.conf.")));

	if (token[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the Switchgrid API token is empty")));

	/* a token goes into an HTTP header: refuse anything that could split it */
	for (p = token; *p; p++)
	{
		if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
		{
			sg_forget_token(token);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("the Switchgrid API token contains invalid characters"),
					 errdetail("A token is printable ASCII without spaces.")));
		}
	}
	return token;
}

void
sg_forget_token(char *token)
{
	if (token == NULL)
		return;
	explicit_bzero(token, strlen(token));
	pfree(token);
}
