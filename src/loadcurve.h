/*-------------------------------------------------------------------------
 * loadcurve.h
 *	  Reading Switchgrid's LOADCURVE JSON inside the server.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_LOADCURVE_H
#define SWITCHGRID_LOADCURVE_H

#include "curveparse.h"

/*
 * Parses a LOADCURVE body with sg_curve_parse(), P1D steps following the
 * server's Europe/Paris time zone, and calls "fn" once per step.  Returns the
 * number of points; a body that is not a load curve raises SQLSTATE 08P01
 * naming "what".  "default_prm" names the PRM of the single-PRM shape.
 */
extern int64 sg_read_loadcurve(char *body, size_t len, const char *default_prm,
							   SgCurvePointFn fn, void *arg, const char *what);

#endif							/* SWITCHGRID_LOADCURVE_H */
