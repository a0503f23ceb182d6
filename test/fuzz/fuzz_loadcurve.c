/*-------------------------------------------------------------------------
 * fuzz_loadcurve.c
 *	  libFuzzer target: the LOADCURVE JSON parser (src/curveparse.c).
 *
 * Besides what ASan and UBSan catch, it checks the parser's promises: an
 * error is a non-empty sentence, the count returned is the points emitted,
 * a per-PRM series is named by a 14-digit PRM, and within a series time
 * only moves forward.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <math.h>

#include "curveparse.h"
#include "fuzz_common.h"

typedef struct SgFuzzCheck
{
	const char *prm;
	bool		started;
	TimestampTz last;
	int64		n;
} SgFuzzCheck;

static void
sg_fuzz_point(void *arg, const char *prm, TimestampTz ts, int64 step_s, bool isnull,
			  double v)
{
	SgFuzzCheck *c = (SgFuzzCheck *) arg;

	if (!c->started || prm != c->prm)
	{
		if (prm != NULL && (strlen(prm) != 14 || strspn(prm, "0123456789") != 14))
			abort();
		c->prm = prm;
		c->started = true;
	}
	else if (ts <= c->last)
		abort();				/* time went backwards within a series */
	if (!isnull && !isfinite(v))
		abort();
	if (step_s <= 0)
		abort();
	if (!IS_VALID_TIMESTAMP(ts))
		abort();
	c->last = ts;
	c->n++;
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init = false;
	char	   *body;
	char	   *error;
	SgCurveReader reader;
	SgFuzzCheck check;
	int64		n;

	if (!init)
	{
		sg_fuzz_paris();
		init = true;
	}
	/* the server's bodies are NUL-terminated; the parser must not need it */
	body = malloc(size + 1);
	memcpy(body, data, size);
	body[size] = '\0';

	memset(&check, 0, sizeof(check));
	sg_fuzz_reader(&reader, "09111642617347", sg_fuzz_point, &check);
	n = sg_curve_parse(body, size, &reader, &error);
	if (n < 0)
	{
		if (error == NULL || error[0] == '\0')
			abort();
		pfree(error);
	}
	else if (error != NULL || n != check.n)
		abort();
	free(body);
	return 0;
}
