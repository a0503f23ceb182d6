/*-------------------------------------------------------------------------
 * fuzz_datetime.c
 *	  libFuzzer target: the API date-time parser (src/iso8601.c), which
 *	  checks a user's since/until and reads a load curve's startsAt.
 *
 * Every accepted date-time is checked against the C library: the instant
 * sg_iso_datetime_utc() computes must be timegm()'s for the same fields.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <time.h>

#include "fuzz_common.h"
#include "iso8601.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *s = malloc(size + 1);
	SgIsoDateTime dt;
	TimestampTz ts;

	memcpy(s, data, size);
	s[size] = '\0';
	if (sg_iso_scan_datetime(s, &dt))
	{
		/* the spans stay inside the string */
		if (dt.date_len != 10 ||
			(dt.time_start && (dt.time_start < s || dt.time_start + dt.time_len > s + size)) ||
			(dt.offset_start && (dt.offset_start < s || dt.offset_start + dt.offset_len > s + size)) ||
			(dt.zone_start && (dt.zone_start < s || dt.zone_start + dt.zone_len > s + size)))
			abort();
		if (sg_iso_datetime_utc(&dt, &ts))
		{
			struct tm	tm;
			time_t		t;

			memset(&tm, 0, sizeof(tm));
			tm.tm_year = dt.year - 1900;
			tm.tm_mon = dt.month - 1;
			tm.tm_mday = dt.day;
			tm.tm_hour = dt.hour;
			tm.tm_min = dt.minute;
			tm.tm_sec = dt.second;
			t = timegm(&tm);
			if (((int64) t - dt.offset_s - SG_FUZZ_PG_EPOCH) * USECS_PER_SEC + dt.usec != ts)
				abort();
		}
	}
	free(s);
	return 0;
}
