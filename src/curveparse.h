/*-------------------------------------------------------------------------
 * curveparse.h
 *	  Switchgrid's LOADCURVE JSON, parsed without the server: bytes in,
 *	  points out through a callback, errors returned as values.  The
 *	  reader and the point callback are shared with the parser of Enedis'
 *	  raw R63 file (r63parse.h).
 *
 * Built both into the extension and, with -DFRONTEND, into the fuzz
 * harness (test/fuzz).
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_CURVEPARSE_H
#define SWITCHGRID_CURVEPARSE_H

#include "common/jsonapi.h"
#include "datatype/timestamp.h"

/*
 * Receives one load-curve point: the START of its step "ts" (UTC), the
 * length of the step in seconds (a P1D step is the Paris day's, 82800 to
 * 90000), and the mean power over it in W.  "prm" is NULL when the payload
 * does not name its PRM and no default PRM was given; each series has a
 * pointer of its own, valid until the parser returns.
 */
typedef void (*SgCurvePointFn) (void *arg, const char *prm, TimestampTz ts,
								int64 step_s, bool isnull, double power_w);

/*
 * Moves "ts" by "days" calendar days in Europe/Paris, keeping its wall-clock
 * time (a P1D step lasts 23 or 25 hours across a DST change).  False if the
 * result is out of range.  The server answers with its time-zone database,
 * the fuzz harness with the C library's.
 */
typedef bool (*SgCurveAddDaysFn) (void *arg, TimestampTz ts, int64 days,
								  TimestampTz *result);

/*
 * Sets *offset_s to the offset of Europe/Paris from UTC at instant "ts", in
 * seconds east (3600 in winter, 7200 in summer).  False if out of range.
 */
typedef bool (*SgCurveUtcOffsetFn) (void *arg, TimestampTz ts, int *offset_s);

typedef struct SgCurveReader
{
	const char *default_prm;	/* the PRM of a payload that names none, or NULL */
	SgCurvePointFn point;
	void	   *point_arg;
	/* the Paris calendar, which only the server knows: "tz_arg" is theirs */
	SgCurveAddDaysFn add_days;
	SgCurveUtcOffsetFn utc_offset;
	void	   *tz_arg;
} SgCurveReader;

/*
 * Parses a LOADCURVE body ({period, startsAt, endsAt, values} or
 * {"<prm>": {...}, ...}) and calls reader->point once per step, in order.
 * The body is read in place, in one pass, and never copied.  Returns the
 * number of points; or -1 with *error set to a palloc'd sentence saying what
 * is wrong ("A value is not a number."), for the caller to report.
 */
extern int64 sg_curve_parse(char *body, size_t len, const SgCurveReader *reader,
							char **error);

/*
 * Whether a JSON body nests deeper than "max_depth" objects and arrays
 * (brackets inside strings do not count).  PostgreSQL's JSON parser before
 * 17 recurses once per level and only the server checks its stack, so a
 * parser that runs outside it refuses such a body first.
 */
extern bool sg_json_too_deep(const char *body, size_t len, int max_depth);

/*
 * Runs PostgreSQL's JSON parser over "body" with the callbacks of "sem".
 * Returns the parser's own complaint (a palloc'd sentence), or NULL if it
 * had none; what the callbacks found is theirs to keep.
 */
extern char *sg_json_run(char *body, size_t len, JsonSemAction *sem);

#endif							/* SWITCHGRID_CURVEPARSE_H */
