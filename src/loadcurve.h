/*-------------------------------------------------------------------------
 * loadcurve.h
 *	  Parsing Switchgrid's LOADCURVE JSON straight into rows.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_LOADCURVE_H
#define SWITCHGRID_LOADCURVE_H

#include "access/tupdesc.h"
#include "utils/tuplestore.h"

/*
 * Receives one load-curve point.  "prm" is NULL when the payload has the
 * single-PRM shape and no default PRM was given.
 */
typedef void (*SgCurvePointFn) (void *arg, const char *prm, TimestampTz ts,
								bool isnull, double power_w);

/*
 * Parses a LOADCURVE body ({period, startsAt, endsAt, values} or
 * {"<prm>": {...}, ...}) and calls "fn" once per step, in order.  The body is
 * read in place, one pass, and never copied.  "default_prm" names the PRM of
 * the single-PRM shape.  Returns the number of points.  A body that is not a
 * load curve raises SQLSTATE 08P01.
 */
extern int64 sg_parse_loadcurve(char *body, size_t len, const char *default_prm,
								SgCurvePointFn fn, void *arg, const char *what);

/*
 * Maps a user's period ('30min', 'PT30M', 'PT1800S', '1h', 'P1D', ...) to the
 * API's query value ('30min', '1h', '1d', ...); raises 22023 otherwise.
 */
extern const char *sg_loadcurve_period_param(const char *period);

#endif							/* SWITCHGRID_LOADCURVE_H */
