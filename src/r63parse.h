/*-------------------------------------------------------------------------
 * r63parse.h
 *	  Enedis' raw R63 load-curve file (what the dataUrl of an R63 or
 *	  R63_SYNC request serves), parsed without the server: bytes in, points
 *	  out through a callback, errors returned as values.
 *
 * Built both into the extension and, with -DFRONTEND, into the fuzz
 * harness (test/fuzz).
 *-------------------------------------------------------------------------
 */
#ifndef SWITCHGRID_R63PARSE_H
#define SWITCHGRID_R63PARSE_H

#include "curveparse.h"

/*
 * Parses an R63 file ({"header": ..., "mesures": [{"idPrm", "grandeur":
 * [{"unite": "W", "points": [{"v", "d", "p", ...}]}]}]}) and calls
 * reader->point once per point, in the file's order, with the same values
 * as a LOADCURVE point: the START of the step in UTC (the file stamps its
 * END, in Paris local time without an offset), the point's own step, the
 * mean power in W (NULL if "v" is null or absent).  reader->utc_offset
 * gives the Paris calendar: a local time of the repeated autumn hour is the
 * earlier instant (summer time) unless the points before it in its series
 * already reached it (then winter time); a local time that the spring
 * change skips is an error.  Each series ("grandeur") has a PRM pointer of
 * its own ("idPrm", else reader->default_prm).  The body is read in place,
 * in one pass.  Returns the number of points; or -1 with *error set to a
 * palloc'd sentence, for the caller to report.
 */
extern int64 sg_r63_parse(char *body, size_t len, const SgCurveReader *reader,
						  char **error);

#endif							/* SWITCHGRID_R63PARSE_H */
