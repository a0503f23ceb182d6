/*-------------------------------------------------------------------------
 * curveparse.h
 *	  Switchgrid's LOADCURVE JSON, parsed without the server: bytes in,
 *	  points out through a callback, errors returned as values.
 *
 * Built both into the extension and, with -DFRONTEND, into the fuzz
 * harness (test/fuzz).
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_CURVEPARSE_H
#define SWITCHGRID_CURVEPARSE_H

#include "datatype/timestamp.h"

/*
 * Receives one load-curve point.  "prm" is NULL when the payload has the
 * single-PRM shape and no default PRM was given; each series has a pointer
 * of its own, valid until sg_curve_parse() returns.
 */
typedef void (*SgCurvePointFn) (void *arg, const char *prm, TimestampTz ts,
								bool isnull, double power_w);

/*
 * Moves "ts" by "days" calendar days in Europe/Paris, keeping its wall-clock
 * time (a P1D step lasts 23 or 25 hours across a DST change).  False if the
 * result is out of range.  The server answers with its time-zone database,
 * the fuzz harness with the C library's.
 */
typedef bool (*SgCurveAddDaysFn) (void *arg, TimestampTz ts, int64 days,
								  TimestampTz *result);

typedef struct SgCurveReader
{
	const char *default_prm;	/* the PRM of a single-PRM payload, or NULL */
	SgCurvePointFn point;
	void	   *point_arg;
	SgCurveAddDaysFn add_days;
	void	   *days_arg;
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

#endif							/* SWITCHGRID_CURVEPARSE_H */
