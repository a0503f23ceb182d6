/*-------------------------------------------------------------------------
 * iso8601.h
 *	  The ISO 8601 date-times and durations the Switchgrid API reads and
 *	  writes, parsed without the server: bytes in, values out.
 *
 * Built both into the extension and, with -DFRONTEND, into the fuzz
 * harness (test/fuzz): nothing here raises an error or touches SQL.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_ISO8601_H
#define SWITCHGRID_ISO8601_H

#include "datatype/timestamp.h"

/*
 * An API date-time as sg_iso_scan_datetime() reads it: 2024-12-10,
 * 2024-12-10T00:00[:00[.fff]], then Z, +HH[:MM] or -HH[:MM], then
 * [Zone/Name].  The spans point into the scanned string.
 */
typedef struct SgIsoDateTime
{
	int			year,
				month,
				day,
				hour,
				minute,
				second;
	int64		usec;			/* the fraction, rounded to microseconds */
	bool		has_offset;		/* Z or +HH[:MM] */
	bool		offset_ok;		/* ... and is usable (not +01:, at most 15:59) */
	int			offset_s;		/* seconds east of UTC */
	/* spans of the input */
	int			date_len;		/* YYYY-MM-DD */
	const char *time_start;		/* NULL if no time */
	int			time_len;
	const char *offset_start;	/* NULL if no offset */
	int			offset_len;
	const char *zone_start;		/* NULL if no [Zone/Name] */
	int			zone_len;
} SgIsoDateTime;

/* Whether "s" has the shape above; fills *dt if so.  Checks no ranges but the offset's. */
extern bool sg_iso_scan_datetime(const char *s, SgIsoDateTime *dt);

/*
 * The instant a scanned date-time names when it carries an offset, or none
 * at all (then it is UTC).  False if its fields are out of range, if it
 * names only a zone (that needs a time-zone database), or if the result is
 * out of PostgreSQL's range.
 */
extern bool sg_iso_datetime_utc(const SgIsoDateTime *dt, TimestampTz *ts);

/*
 * Parses the ISO 8601 durations a load curve uses: PnD, or PT with H, M and
 * S parts (PT10M, PT600S, PT1H, PT1H30M), each unit at most once, no number
 * over a year's seconds.  Sets a fixed step in *usec, or whole days in *days (never both).
 */
extern bool sg_iso_parse_period(const char *s, int64 *usec, int *days);

/*
 * The API's query value ('5min' ... '1h', '1d') for a user's period ('30min',
 * 'PT30M', 'PT1800S', '1h', 'P1D', ...), or NULL if the API has none.
 */
extern const char *sg_iso_period_param(const char *period);

#endif							/* SWITCHGRID_ISO8601_H */
