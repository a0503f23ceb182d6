/*-------------------------------------------------------------------------
 * fuzz_common.h
 *	  What the fuzz targets and the unit harness share: the C library's
 *	  Europe/Paris calendar (P1D steps, local times), and reading files.
 *
 * The parsers under test (src/curveparse.c, src/iso8601.c) are built here
 * with -DFRONTEND and libpgcommon, exactly as they are in the extension,
 * but without a server: the server's time-zone database is replaced by the
 * C library's (tzdata), which agrees with it for Europe/Paris.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_FUZZ_COMMON_H
#define SWITCHGRID_FUZZ_COMMON_H

#include <stdlib.h>
#include <time.h>

#include "datatype/timestamp.h"

#include "curveparse.h"

/* Seconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
#define SG_FUZZ_PG_EPOCH 946684800LL

static inline void
sg_fuzz_paris(void)
{
	setenv("TZ", "Europe/Paris", 1);
	tzset();
}

/* SgCurveAddDaysFn with the C library's time-zone database. */
static inline bool
sg_fuzz_add_days(void *arg, TimestampTz ts, int64 days, TimestampTz *result)
{
	int64		secs = ts / USECS_PER_SEC;
	int64		frac = ts % USECS_PER_SEC;
	time_t		t;
	struct tm	tm;

	if (frac < 0)
	{
		frac += USECS_PER_SEC;
		secs--;
	}
	if (days < -1000000 || days > 1000000)
		return false;
	t = (time_t) (secs + SG_FUZZ_PG_EPOCH);
	if (localtime_r(&t, &tm) == NULL)
		return false;
	tm.tm_mday += (int) days;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t == (time_t) -1)
		return false;
	*result = ((int64) t - SG_FUZZ_PG_EPOCH) * USECS_PER_SEC + frac;
	return IS_VALID_TIMESTAMP(*result);
}

/* SgCurveUtcOffsetFn with the C library's time-zone database. */
static inline bool
sg_fuzz_utc_offset(void *arg, TimestampTz ts, int *offset_s)
{
	int64		secs = ts / USECS_PER_SEC;
	time_t		t;
	struct tm	tm;

	if (ts % USECS_PER_SEC < 0)
		secs--;
	t = (time_t) (secs + SG_FUZZ_PG_EPOCH);
	if (localtime_r(&t, &tm) == NULL)
		return false;
	*offset_s = (int) tm.tm_gmtoff;
	return true;
}

/* A reader whose calendar is the C library's Europe/Paris. */
static inline void
sg_fuzz_reader(SgCurveReader *r, const char *default_prm, SgCurvePointFn fn, void *arg)
{
	r->default_prm = default_prm;
	r->point = fn;
	r->point_arg = arg;
	r->add_days = sg_fuzz_add_days;
	r->utc_offset = sg_fuzz_utc_offset;
	r->tz_arg = NULL;
}

#endif							/* SWITCHGRID_FUZZ_COMMON_H */
