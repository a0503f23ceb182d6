/*-------------------------------------------------------------------------
 * unit.c
 *	  Unit harness for the network parsers, run under ASan and UBSan:
 *	  hand-made edge cases with their expected results (DST days, values
 *	  before the step, R63 files stamped in Paris local time, steps that
 *	  change, malformed shapes, date-times and periods at their limits),
 *	  then every file of the seed corpus.
 *
 * Usage: ./unit CORPUS_DIR   (prints one line per failure, exits 1 if any)
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <dirent.h>
#include <sys/stat.h>

#include "curveparse.h"
#include "fuzz_common.h"
#include "iso8601.h"
#include "r63parse.h"

static int	failures = 0;
static int	checks = 0;

#define CHECK(cond, ...) \
	do { \
		checks++; \
		if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); printf("\n"); } \
	} while (0)

/* An instant in UTC, as PostgreSQL counts it. */
static TimestampTz
utc(int y, int mo, int d, int h, int mi)
{
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return ((int64) timegm(&tm) - SG_FUZZ_PG_EPOCH) * USECS_PER_SEC;
}

/* ---- load curves ---- */

#define MAX_POINTS 64

typedef struct Points
{
	int			n;
	const char *prm[MAX_POINTS];
	TimestampTz ts[MAX_POINTS];
	int64		step_s[MAX_POINTS];
	bool		isnull[MAX_POINTS];
	double		v[MAX_POINTS];
	char		prm_copy[MAX_POINTS][16];
} Points;

static void
collect(void *arg, const char *prm, TimestampTz ts, int64 step_s, bool isnull, double v)
{
	Points	   *p = (Points *) arg;

	if (p->n < MAX_POINTS)
	{
		p->prm[p->n] = prm;
		snprintf(p->prm_copy[p->n], sizeof(p->prm_copy[0]), "%s", prm ? prm : "");
		p->ts[p->n] = ts;
		p->step_s[p->n] = step_s;
		p->isnull[p->n] = isnull;
		p->v[p->n] = v;
	}
	p->n++;
}

/* Parses "json"; returns the points, or -1 with *error (caller frees). */
static int64
curve(const char *json, const char *default_prm, Points *p, char **error)
{
	SgCurveReader r;
	char	   *body = strdup(json);
	int64		n;

	memset(p, 0, sizeof(*p));
	sg_fuzz_reader(&r, default_prm, collect, p);
	n = sg_curve_parse(body, strlen(body), &r, error);
	free(body);
	return n;
}

static void
expect_curve_error(const char *json, const char *detail)
{
	Points		p;
	char	   *error;
	int64		n = curve(json, NULL, &p, &error);

	CHECK(n == -1 && error != NULL && (detail == NULL || strcmp(error, detail) == 0),
		  "%s: expected error \"%s\", got %lld \"%s\"", json, detail ? detail : "(any)",
		  (long long) n, error ? error : "(none)");
	if (error)
		pfree(error);
}

static void
test_curves(void)
{
	Points		p;
	char	   *error;
	int64		n;

	/* P1D over the spring change: 23 hours from 31 March 2024 */
	n = curve("{\"period\": \"P1D\", \"startsAt\": \"2024-03-29T23:00:00Z\", \"values\": [1, 2, 3]}",
			  "09111642617347", &p, &error);
	CHECK(n == 3, "P1D March: %lld points (%s)", (long long) n, error ? error : "");
	CHECK(p.ts[1] == utc(2024, 3, 30, 23, 0) && p.ts[2] == utc(2024, 3, 31, 22, 0),
		  "P1D March: the DST day lasts 23 hours");
	CHECK(strcmp(p.prm_copy[0], "09111642617347") == 0, "the default PRM names a one-PRM curve");

	/* P1D over the autumn change: 25 hours from 27 October 2024 */
	n = curve("{\"values\": [5, null], \"period\": \"P1D\", \"startsAt\": \"2024-10-26T22:00:00.000Z\"}",
			  NULL, &p, &error);
	CHECK(n == 2 && p.ts[1] == utc(2024, 10, 27, 23, 0),
		  "P1D October, values before the step: the DST day lasts 25 hours");
	CHECK(p.isnull[1] && !p.isnull[0] && p.v[0] == 5 && p.prm[0] == NULL,
		  "null values stay null; no default PRM gives NULL");

	/* sub-day steps are fixed: 30 minutes across the spring change */
	n = curve("{\"period\": \"PT30M\", \"startsAt\": \"2024-03-31T00:30:00Z\", \"values\": [1, \"2.5\", 3]}",
			  NULL, &p, &error);
	CHECK(n == 3 && p.ts[2] == utc(2024, 3, 31, 1, 30) && p.v[1] == 2.5,
		  "PT30M across DST is fixed, numeric strings are numbers");

	/* offsets in startsAt */
	n = curve("{\"period\": \"PT1H\", \"startsAt\": \"2024-12-10T00:00:00+01:00\", \"values\": [1]}",
			  NULL, &p, &error);
	CHECK(n == 1 && p.ts[0] == utc(2024, 12, 9, 23, 0), "startsAt with an offset");

	/* several PRMs, each its own series */
	n = curve("{\"09111642617347\": {\"period\": \"PT10M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1, 2]},"
			  " \"30001234567890\": {\"values\": [3], \"startsAt\": \"2024-01-01T00:00:00Z\", \"period\": \"PT600S\"}}",
			  "99999999999999", &p, &error);
	CHECK(n == 3 && strcmp(p.prm_copy[0], "09111642617347") == 0 &&
		  strcmp(p.prm_copy[2], "30001234567890") == 0 && p.prm[0] != p.prm[2] &&
		  p.ts[1] == utc(2024, 1, 1, 0, 10) && p.ts[2] == utc(2024, 1, 1, 0, 0),
		  "per-PRM shape: %lld points", (long long) n);

	/* nothing to read is no error */
	n = curve("{}", NULL, &p, &error);
	CHECK(n == 0 && error == NULL, "an empty object is an empty curve");
	n = curve("{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": null}", NULL, &p, &error);
	CHECK(n == 0 && error == NULL, "null values are no values");

	/* malformed shapes, each with its sentence */
	expect_curve_error("", NULL);
	expect_curve_error("[1, 2]", "Unexpected array.");
	expect_curve_error("\"x\"", "The body is not a load-curve object.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [[1, 2], 3]}",
					   "A value is an array.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [{}]}",
					   "A value is an object.");
	expect_curve_error("{\"notaprm\": {\"period\": \"PT30M\", \"values\": [1]}}",
					   "A per-PRM key is not a 14-digit PRM.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": 5}",
					   "\"values\" is not an array.");
	expect_curve_error("{\"period\": \"PT30M30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1]}",
					   "Unknown period \"PT30M30M\".");
	expect_curve_error("{\"values\": [1, 2]}", "A series has values but no startsAt or period.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1, \"abc\"]}",
					   "A value is not a number.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1e999]}",
					   "A value is not a number.");
	expect_curve_error("{\"period\": 30, \"values\": [1]}", "period and startsAt must be strings.");
	expect_curve_error("{\"period\": \"PT1H\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1],"
					   " \"startsAt\": \"2023-01-01T00:00:00Z\", \"values\": [2]}",
					   "A series has more than one startsAt.");
	expect_curve_error("{\"period\": \"PT1H\", \"values\": [1], \"period\": \"P1D\"}",
					   "A series has more than one period.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"yesterday\", \"values\": [1]}",
					   "startsAt is not an ISO 8601 date-time.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"2024-02-30T00:00:00Z\", \"values\": [1]}",
					   "startsAt is not an ISO 8601 date-time.");
	expect_curve_error("{\"09111642617347\": {\"values\": []}, \"period\": \"PT30M\"}",
					   "Mixed single-PRM and per-PRM shapes.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"x\": {\"y\": {}}}",
					   "Unexpected nested object.");
	{
		/* steps of 3,610 years run out of PostgreSQL's range (294276 AD) */
		char		json[512];
		int			i;

		strcpy(json, "{\"period\": \"PT31622400H\", \"startsAt\": \"9999-01-01T00:00:00Z\", \"values\": [0");
		for (i = 0; i < 90; i++)
			strcat(json, ",1");
		strcat(json, "]}");
		expect_curve_error(json, "A timestamp is out of range.");
	}
	expect_curve_error("{\"period\": \"P366D\", \"startsAt\": \"294276-01-01T00:00:00Z\", \"values\": [1]}",
					   "startsAt is not an ISO 8601 date-time.");
	expect_curve_error("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
					   "The body nests deeper than a load curve.");
	expect_curve_error("{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1, 2",
					   NULL);
	/* a bracket inside a string is not nesting */
	n = curve("{\"note\": \"[[[[{{{{\", \"period\": \"PT1H\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1]}",
			  NULL, &p, &error);
	CHECK(n == 1, "brackets in strings: %s", error ? error : "");
}

/* ---- R63 files ---- */

/* Parses an R63 file; returns the points, or -1 with *error (caller frees). */
static int64
r63(const char *json, const char *default_prm, Points *p, char **error)
{
	SgCurveReader r;
	char	   *body = strdup(json);
	int64		n;

	memset(p, 0, sizeof(*p));
	sg_fuzz_reader(&r, default_prm, collect, p);
	n = sg_r63_parse(body, strlen(body), &r, error);
	free(body);
	return n;
}

static void
expect_r63_error(const char *json, const char *detail)
{
	Points		p;
	char	   *error;
	int64		n = r63(json, NULL, &p, &error);

	CHECK(n == -1 && error != NULL && (detail == NULL || strcmp(error, detail) == 0),
		  "%s: expected error \"%s\", got %lld \"%s\"", json, detail ? detail : "(any)",
		  (long long) n, error ? error : "(none)");
	if (error)
		pfree(error);
}

#define R63_HEAD "{\"header\": {\"codeFlux\": \"R63\"}, \"mesures\": [{\"idPrm\": \"09111642617347\", " \
	"\"grandeur\": [{\"grandeurMetier\": \"CONS\", \"unite\": \"W\", \"points\": ["
#define R63_TAIL "]}]}]}"
#define PT(v, d, p) "{\"v\": \"" v "\", \"d\": \"" d "\", \"p\": \"" p "\", \"n\": \"B\", \"iv\": 0, \"ec\": 0}"

static void
test_r63(void)
{
	Points		p;
	char	   *error;
	int64		n;

	/* end-stamped Paris time becomes the UTC start of the step */
	n = r63(R63_HEAD PT("1268", "2023-04-01 00:30:00", "PT30M") ","
			PT("830", "2023-04-01 01:00:00", "PT30M") R63_TAIL, NULL, &p, &error);
	CHECK(n == 2 && p.ts[0] == utc(2023, 3, 31, 22, 0) && p.ts[1] == utc(2023, 3, 31, 22, 30) &&
		  p.step_s[0] == 1800 && p.v[0] == 1268 && p.v[1] == 830 &&
		  strcmp(p.prm_copy[0], "09111642617347") == 0,
		  "R63 sample: %lld points (%s)", (long long) n, error ? error : "");

	/* autumn: 02:00 and 02:30 twice, told apart by their position */
	n = r63(R63_HEAD PT("1", "2024-10-27 01:30:00", "PT30M") "," PT("2", "2024-10-27 02:00:00", "PT30M") ","
			PT("3", "2024-10-27 02:30:00", "PT30M") "," PT("4", "2024-10-27 02:00:00", "PT30M") ","
			PT("5", "2024-10-27 02:30:00", "PT30M") "," PT("6", "2024-10-27 03:00:00", "PT30M") R63_TAIL,
			NULL, &p, &error);
	CHECK(n == 6 && p.ts[0] == utc(2024, 10, 26, 23, 0) && p.ts[1] == utc(2024, 10, 26, 23, 30) &&
		  p.ts[2] == utc(2024, 10, 27, 0, 0) && p.ts[3] == utc(2024, 10, 27, 0, 30) &&
		  p.ts[4] == utc(2024, 10, 27, 1, 0) && p.ts[5] == utc(2024, 10, 27, 1, 30),
		  "R63 autumn: %lld points (%s)", (long long) n, error ? error : "");
	/* ... also when the first 02:30 is missing: the next 02:00 is winter time */
	n = r63(R63_HEAD PT("2", "2024-10-27 02:00:00", "PT30M") "," PT("4", "2024-10-27 02:00:00", "PT30M") ","
			PT("5", "2024-10-27 02:30:00", "PT30M") R63_TAIL, NULL, &p, &error);
	CHECK(n == 3 && p.ts[0] == utc(2024, 10, 26, 23, 30) && p.ts[1] == utc(2024, 10, 27, 0, 30) &&
		  p.ts[2] == utc(2024, 10, 27, 1, 0), "R63 autumn with a gap: %s", error ? error : "");

	/* spring: 01:30 then 03:00 are consecutive half-hours; 02:30 does not exist */
	n = r63(R63_HEAD PT("1", "2024-03-31 01:30:00", "PT30M") "," PT("2", "2024-03-31 03:00:00", "PT30M") R63_TAIL,
			NULL, &p, &error);
	CHECK(n == 2 && p.ts[0] == utc(2024, 3, 31, 0, 0) && p.ts[1] == utc(2024, 3, 31, 0, 30),
		  "R63 spring: %s", error ? error : "");
	expect_r63_error(R63_HEAD PT("1", "2024-03-31 02:30:00", "PT30M") R63_TAIL,
					 "Point 1 of the file has a \"d\" that does not exist in Paris (the hour skipped when clocks go forward).");

	/* a step that changes: PT10M up to 12:00, PT30M after; values as numbers, null, absent */
	n = r63(R63_HEAD "{\"v\": 5, \"d\": \"2024-06-04 11:50:00\", \"p\": \"PT10M\"},"
			"{\"v\": null, \"d\": \"2024-06-04 12:00:00\", \"p\": \"PT10M\"},"
			"{\"d\": \"2024-06-04T12:30:00\", \"p\": \"PT30M\"}," PT("7.5", "2024-06-04 13:00:00", "PT30M") R63_TAIL,
			NULL, &p, &error);
	CHECK(n == 4 && p.ts[0] == utc(2024, 6, 4, 9, 40) && p.step_s[0] == 600 && !p.isnull[0] &&
		  p.ts[1] == utc(2024, 6, 4, 9, 50) && p.isnull[1] && p.ts[2] == utc(2024, 6, 4, 10, 0) &&
		  p.step_s[2] == 1800 && p.isnull[2] && p.v[3] == 7.5,
		  "R63 step change: %lld (%s)", (long long) n, error ? error : "");

	/* idPrm after the points, two PRMs, a series each with a pointer of its own */
	n = r63("{\"mesures\": [{\"grandeur\": [{\"points\": [" PT("1", "2024-01-01 00:10:00", "PT10M") "]}],"
			" \"idPrm\": \"30001234567890\"}, {\"idPrm\": \"09111642617347\", \"grandeur\": ["
			"{\"points\": [" PT("2", "2024-01-01 00:30:00", "PT30M") "]}, {\"points\": ["
			PT("3", "2024-01-01 00:30:00", "PT30M") "]}]}]}", NULL, &p, &error);
	CHECK(n == 3 && strcmp(p.prm_copy[0], "30001234567890") == 0 &&
		  strcmp(p.prm_copy[1], "09111642617347") == 0 && p.prm[1] != p.prm[2] && p.ts[1] == p.ts[2],
		  "R63 PRMs: %lld (%s)", (long long) n, error ? error : "");
	/* no idPrm: the default */
	n = r63("{\"mesures\": [{\"grandeur\": [{\"points\": [" PT("1", "2024-01-01 00:10:00", "PT10M") "]}]}]}",
			"22222222222222", &p, &error);
	CHECK(n == 1 && strcmp(p.prm_copy[0], "22222222222222") == 0, "R63 default PRM");
	/* an offset, if a file has one, is taken as given; an empty file has no points */
	n = r63(R63_HEAD PT("1", "2024-10-27 02:30:00+01:00", "PT30M") R63_TAIL, NULL, &p, &error);
	CHECK(n == 1 && p.ts[0] == utc(2024, 10, 27, 1, 0), "R63 offset: %s", error ? error : "");
	n = r63("{\"header\": {}, \"mesures\": []}", NULL, &p, &error);
	CHECK(n == 0 && error == NULL, "R63 empty");

	/* malformed files, one of each kind */
	expect_r63_error("[]", "The file is not an R63 load curve: it is not a JSON object.");
	expect_r63_error("{\"header\": {}}", "The file is not an R63 load curve: it has no \"mesures\" array.");
	expect_r63_error("{\"mesures\": 5}", "The file is not an R63 load curve: \"mesures\" is not an array.");
	expect_r63_error("{\"mesures\": [5]}",
					 "The file is not an R63 load curve: an element of \"mesures\", \"grandeur\" or \"points\" is not an object.");
	expect_r63_error("{\"mesures\": [{\"idPrm\": \"123\"}]}", "An \"idPrm\" is not a 14-digit PRM.");
	expect_r63_error("{\"mesures\": [{\"grandeur\": [{\"unite\": \"kW\", \"points\": []}]}]}",
					 "A series of the load curve is not in W (its \"unite\").");
	expect_r63_error(R63_HEAD "{\"v\": \"1\", \"p\": \"PT30M\"}" R63_TAIL, "Point 1 of the file has no \"d\".");
	expect_r63_error(R63_HEAD "{\"v\": \"1\", \"d\": \"2024-01-01 00:30:00\"}" R63_TAIL,
					 "Point 1 of the file has no \"p\".");
	expect_r63_error(R63_HEAD PT("1", "2024-01-01 00:30:00", "P1D") R63_TAIL,
					 "Point 1 of the file has a \"p\" that is no load-curve step (such as PT30M).");
	expect_r63_error(R63_HEAD PT("1", "2024-01-01 00:30:00", "PT25H") R63_TAIL,
					 "Point 1 of the file has a \"p\" that is no load-curve step (such as PT30M).");
	expect_r63_error(R63_HEAD PT("1", "01/01/2024 00:30", "PT30M") R63_TAIL,
					 "Point 1 of the file has a \"d\" that is no date-time (such as 2024-03-31 00:30:00).");
	expect_r63_error(R63_HEAD PT("1", "2024-02-30 00:30:00", "PT30M") R63_TAIL,
					 "Point 1 of the file has a \"d\" that is out of range.");
	expect_r63_error(R63_HEAD PT("abc", "2024-01-01 00:30:00", "PT30M") R63_TAIL,
					 "Point 1 of the file has a \"v\" that is not a number.");
	expect_r63_error(R63_HEAD "{\"v\": true, \"d\": \"2024-01-01 00:30:00\", \"p\": \"PT30M\"}" R63_TAIL,
					 "Point 1 of the file has a \"v\" that is not a number.");
	expect_r63_error(R63_HEAD PT("1", "2024-01-01 01:00:00", "PT30M") "," PT("2", "2024-01-01 01:00:00", "PT30M") R63_TAIL,
					 "Point 2 of the file overlaps the point before it, or goes back in time.");
	expect_r63_error(R63_HEAD PT("1", "2024-01-01 01:00:00", "PT30M") "," PT("2", "2024-01-01 01:10:00", "PT30M") R63_TAIL,
					 "Point 2 of the file overlaps the point before it, or goes back in time.");
	expect_r63_error(R63_HEAD "{\"v\": \"1\", \"v\": \"2\", \"d\": \"2024-01-01 00:30:00\", \"p\": \"PT30M\"}" R63_TAIL,
					 "Point 1 of the file has more than one \"v\".");
	expect_r63_error(R63_HEAD "{\"d\": {}}" R63_TAIL, "Point 1 of the file has a field that is an object.");
	expect_r63_error("{\"mesures\": [{\"idPrm\": \"09111642617347\", \"idPrm\": \"09111642617347\"}]}",
					 "A mesure has more than one \"idPrm\".");
	expect_r63_error("{\"mesures\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
					 "The body nests deeper than an R63 load curve.");
	expect_r63_error(R63_HEAD PT("1", "2024-01-01 00:30:00", "PT30M"), NULL);
}

/* ---- date-times and periods ---- */

static void
expect_datetime(const char *s, bool scans, bool has_utc, TimestampTz want)
{
	SgIsoDateTime dt;
	TimestampTz ts = 0;
	bool		scanned = sg_iso_scan_datetime(s, &dt);
	bool		got = scanned && sg_iso_datetime_utc(&dt, &ts);

	CHECK(scanned == scans && got == has_utc && (!got || ts == want),
		  "date-time \"%s\": scanned %d, instant %d", s, scanned, got);
}

static void
test_datetimes(void)
{
	expect_datetime("2024-12-10", true, true, utc(2024, 12, 10, 0, 0));
	expect_datetime("2024-12-10T00:00:00Z", true, true, utc(2024, 12, 10, 0, 0));
	expect_datetime("2024-12-10T00:00:00.123Z", true, true, utc(2024, 12, 10, 0, 0) + 123000);
	expect_datetime("2024-12-10T00:00:00.1234567Z", true, true, utc(2024, 12, 10, 0, 0) + 123457);
	expect_datetime("2024-12-10T00:00:00+01:00", true, true, utc(2024, 12, 9, 23, 0));
	expect_datetime("2024-12-10T00:00-0130", true, true, utc(2024, 12, 10, 1, 30));
	expect_datetime("2024-12-10T24:00:00Z", true, true, utc(2024, 12, 11, 0, 0));
	expect_datetime("2024-12-10T00:00:00[Europe/Paris]", true, false, 0);
	expect_datetime("2024-12-10T00:00:00+01:", true, false, 0);
	expect_datetime("2024-12-10T00:00:00+16:00", true, false, 0);
	expect_datetime("2024-02-29T00:00:00Z", true, true, utc(2024, 2, 29, 0, 0));
	expect_datetime("2023-02-29T00:00:00Z", true, false, 0);
	expect_datetime("0000-01-01", true, false, 0);
	expect_datetime("2024-13-01", true, false, 0);
	expect_datetime("2024-12-10T24:00:01Z", true, false, 0);
	expect_datetime("2024-12-10 00:00:00", false, false, 0);
	expect_datetime("2024-12-10T00", false, false, 0);
	expect_datetime("2024-12-10T00:00:00.Z", false, false, 0);
	expect_datetime("2024-12-10T00:00:00Z[", false, false, 0);
	expect_datetime("2024-12-10[]", false, false, 0);
	expect_datetime("", false, false, 0);
}

static void
expect_period(const char *s, bool ok, int64 secs, int days, const char *param)
{
	int64		usec = -1;
	int			d = -1;
	bool		got = sg_iso_parse_period(s, &usec, &d);
	const char *p = sg_iso_period_param(s);

	CHECK(got == ok && (!ok || (usec == secs * USECS_PER_SEC && d == days)) &&
		  ((p == NULL && param == NULL) || (p && param && strcmp(p, param) == 0)),
		  "period \"%s\": parsed %d, param %s", s, got, p ? p : "(none)");
}

static void
test_periods(void)
{
	expect_period("P1D", true, 0, 1, "1d");
	expect_period("PT30M", true, 1800, 0, "30min");
	expect_period("PT1800S", true, 1800, 0, "30min");
	expect_period("pt1h", true, 3600, 0, "1h");
	expect_period("PT1H30M", true, 5400, 0, NULL);
	expect_period("P2D", true, 0, 2, NULL);
	expect_period("30min", false, 0, 0, "30min");
	expect_period("PT30M30M", false, 0, 0, NULL);
	expect_period("P1DT1H", false, 0, 0, NULL);
	expect_period("PT0S", false, 0, 0, NULL);
	expect_period("P", false, 0, 0, NULL);
	expect_period("PT", false, 0, 0, NULL);
	expect_period("P1H", false, 0, 0, NULL);
	expect_period("PT99999999999999999999S", false, 0, 0, NULL);
}

/* ---- the seed corpus ---- */

static char *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n + 1);
	*len = fread(buf, 1, n, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/*
 * Runs every file of corpus/<target>.  The simulator's own outputs (sim-*)
 * must be read without error; other files (hand-made, past crashes) only
 * must not crash.
 */
static int
test_corpus(const char *dir, const char *target)
{
	char		path[1024];
	DIR		   *d;
	struct dirent *e;
	int			files = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, target);
	d = opendir(path);
	CHECK(d != NULL, "no corpus directory %s", path);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
	{
		char		file[2048];
		size_t		len;
		char	   *buf;
		bool		sim = strncmp(e->d_name, "sim-", 4) == 0;

		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		buf = read_file(file, &len);
		if (buf == NULL)
			continue;
		files++;
		if (strcmp(target, "r63") == 0)
		{
			SgCurveReader r;
			Points		p;
			char	   *error;
			int64		n;

			memset(&p, 0, sizeof(p));
			sg_fuzz_reader(&r, "09111642617347", collect, &p);
			n = sg_r63_parse(buf, len, &r, &error);
			CHECK(!sim || n > 0, "%s: %s", file, error ? error : "no points");
			if (error)
				pfree(error);
		}
		else if (strcmp(target, "loadcurve") == 0)
		{
			SgCurveReader r;
			Points		p;
			char	   *error;
			int64		n;

			memset(&p, 0, sizeof(p));
			sg_fuzz_reader(&r, "09111642617347", collect, &p);
			n = sg_curve_parse(buf, len, &r, &error);
			CHECK(!sim || n > 0, "%s: %s", file, error ? error : "no points");
			if (error)
				pfree(error);
		}
		else if (strcmp(target, "datetime") == 0)
		{
			SgIsoDateTime dt;

			CHECK(!sim || sg_iso_scan_datetime(buf, &dt), "%s does not scan", file);
		}
		else
			CHECK(!sim || sg_iso_period_param(buf) != NULL, "%s is no API period", file);
		free(buf);
	}
	closedir(d);
	return files;
}

int
main(int argc, char **argv)
{
	int			files = 0;

	sg_fuzz_paris();
	test_curves();
	test_r63();
	test_datetimes();
	test_periods();
	if (argc > 1)
	{
		files += test_corpus(argv[1], "loadcurve");
		files += test_corpus(argv[1], "r63");
		files += test_corpus(argv[1], "datetime");
		files += test_corpus(argv[1], "period");
	}
	printf("unit: %d checks, %d corpus files, %d failed\n", checks, files, failures);
	return failures == 0 ? 0 : 1;
}
