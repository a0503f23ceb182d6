/*-------------------------------------------------------------------------
 * loadcurve.h
 *	  Reading load curves (Switchgrid's LOADCURVE JSON, Enedis' raw R63
 *	  file) inside the server.
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_LOADCURVE_H
#define SWITCHGRID_LOADCURVE_H

#include "curveparse.h"
#include "request.h"

/*
 * Parses a load-curve body with the parser "parser" names (SG_PARSE_LOADCURVE:
 * sg_curve_parse(), SG_PARSE_R63: sg_r63_parse()), with the server's
 * Europe/Paris calendar, and calls "fn" once per step.  Returns the number
 * of points; a body that is not a load curve raises SQLSTATE 08P01 naming
 * "what".  "default_prm" names the PRM of a payload that names none.
 */
extern int64 sg_read_loadcurve(char *body, size_t len, SgDataParser parser,
							   const char *default_prm, SgCurvePointFn fn,
							   void *arg, const char *what);

#endif							/* SWITCHGRID_LOADCURVE_H */
