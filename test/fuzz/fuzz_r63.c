/*-------------------------------------------------------------------------
 * fuzz_r63.c
 *	  libFuzzer target: the parser of Enedis' raw R63 file (src/r63parse.c).
 *
 * Besides what ASan and UBSan catch, it checks the parser's promises: an
 * error is a non-empty sentence, the count returned is the points emitted,
 * a series is named by a 14-digit PRM (or the default), every step lasts
 * from a second to a day, and within a series steps follow one another
 * without overlap, so no two points of a series share an instant.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <math.h>

#include "fuzz_common.h"
#include "r63parse.h"

typedef struct SgFuzzCheck
{
	const char *prm;
	bool		started;
	TimestampTz last_end;
	int64		n;
} SgFuzzCheck;

static void
sg_fuzz_point(void *arg, const char *prm, TimestampTz ts, int64 step_s, bool isnull,
			  double v)
{
	SgFuzzCheck *c = (SgFuzzCheck *) arg;

	if (prm != NULL && (strlen(prm) != 14 || strspn(prm, "0123456789") != 14))
		abort();
	if (step_s < 1 || step_s > SECS_PER_DAY)
		abort();
	if (!c->started || prm != c->prm)
	{
		c->prm = prm;
		c->started = true;
	}
	else if (ts < c->last_end)
		abort();				/* overlaps the point before, or goes back */
	if (!isnull && !isfinite(v))
		abort();
	if (!IS_VALID_TIMESTAMP(ts))
		abort();
	c->last_end = ts + step_s * USECS_PER_SEC;
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
	body = malloc(size + 1);
	memcpy(body, data, size);
	body[size] = '\0';

	memset(&check, 0, sizeof(check));
	sg_fuzz_reader(&reader, "09111642617347", sg_fuzz_point, &check);
	n = sg_r63_parse(body, size, &reader, &error);
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
