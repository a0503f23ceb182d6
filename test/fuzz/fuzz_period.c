/*-------------------------------------------------------------------------
 * fuzz_period.c
 *	  libFuzzer target: the ISO 8601 period parser (src/iso8601.c), which
 *	  reads a load curve's "period" and a user's period argument.
 *
 * Checks: a parsed period is a fixed step or whole days, never both, never
 * zero or negative (no overflow), at most 366 days; a period the API takes maps onto one of its names,
 * and that name maps onto itself.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "iso8601.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"5min", "10min", "15min", "30min", "1h", "1d"};
	char	   *s = malloc(size + 1);
	int64		usec;
	int			days;
	const char *param;

	memcpy(s, data, size);
	s[size] = '\0';
	if (sg_iso_parse_period(s, &usec, &days))
	{
		if ((usec > 0) == (days > 0) || usec < 0 || days < 0 || days > 366)
			abort();
	}
	param = sg_iso_period_param(s);
	if (param != NULL)
	{
		size_t		i;
		bool		known = false;

		for (i = 0; i < lengthof(names); i++)
			known |= strcmp(param, names[i]) == 0;
		if (!known || sg_iso_period_param(param) != param)
			abort();
	}
	free(s);
	return 0;
}
