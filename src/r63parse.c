/*-------------------------------------------------------------------------
 * r63parse.c
 *	  Enedis' raw R63 load-curve file, parsed without the server: bytes in,
 *	  points out through a callback, errors returned as values.
 *
 * For R63 and R63_SYNC requests the data is the file at the request's
 * dataUrl, as Enedis writes it: each point carries its own step ("p",
 * PT10M, PT30M, ...; it can change within a day), its mean power in W as a
 * string ("v"), and the END of its step in Paris local time without an
 * offset ("d").  Each point becomes what a LOADCURVE point is: the START of
 * the step, in UTC.
 *
 * Local time is ambiguous once a year: on the autumn change the hour from
 * 02:00 to 03:00 happens twice, and the file tells the two apart only by
 * their order.  A local time is turned into its candidate instants with the
 * Paris UTC offset, which only the server knows (SgCurveUtcOffsetFn); of
 * two candidates the earlier (summer time) is taken unless the series has
 * already gone past it, then the later (winter time).  A local time that
 * the spring change skips (02:00 to 03:00) names no instant: the file is
 * malformed.  Points of a series must follow one another without overlap,
 * which is also what makes that choice sound.
 *
 * Like curveparse.c, this file knows nothing of SQL, SPI or HTTP and never
 * raises an error: the first problem is kept as a sentence and returned.
 * Everything it allocates is freed before it returns.
 *-------------------------------------------------------------------------
 */
#include "compat.h"				/* postgres.h or postgres_fe.h, and the JSON shims */

#include <math.h>

#include "common/jsonapi.h"

#include "iso8601.h"
#include "r63parse.h"

/* a point object sits at depth 7; one more level is allowed inside it */
#define SG_R63_MAX_DEPTH 8

/* What an object or array of the file is. */
typedef enum SgR63Kind
{
	SG_R63_SKIP,				/* anything else: read past */
	SG_R63_ROOT,				/* the file */
	SG_R63_MESURES,				/* "mesures": one per PRM */
	SG_R63_MESURE,
	SG_R63_GRANDEURS,			/* "grandeur": the series of a PRM */
	SG_R63_GRANDEUR,
	SG_R63_POINTS,				/* "points" of a series */
	SG_R63_POINT
} SgR63Kind;

/* The keys that matter, at the level where they matter. */
typedef enum SgR63Field
{
	SG_R63_F_OTHER,
	SG_R63_F_MESURES,
	SG_R63_F_IDPRM,
	SG_R63_F_GRANDEUR,
	SG_R63_F_UNITE,
	SG_R63_F_POINTS,
	SG_R63_F_V,
	SG_R63_F_D,
	SG_R63_F_P
} SgR63Field;

/* A point read before its PRM was known (idPrm after grandeur). */
typedef struct SgR63Held
{
	int			series;
	TimestampTz ts;
	int64		step_s;
	bool		isnull;
	double		v;
} SgR63Held;

typedef struct SgR63Parse
{
	int			depth;
	SgR63Kind	kind[SG_R63_MAX_DEPTH + 1];
	SgR63Field	field;			/* the key just read */
	bool		has_mesures;

	/* the current mesure */
	char	   *prm;			/* its idPrm, or NULL */
	int			series_no;		/* its series so far */
	SgR63Held  *held;
	int64		nheld;
	int64		held_cap;

	/* the current series */
	const char *series_prm;		/* its PRM pointer, once known */
	bool		streaming;		/* its PRM is known: points go straight out */
	bool		have_last;
	TimestampTz last_end;		/* the end of its last point */

	/* the current point: tokens taken from the JSON parser */
	char	   *pt_v;
	char	   *pt_d;
	char	   *pt_p;
	bool		pt_has_v;

	/* the PRM strings handed out, one per series, freed at the end */
	char	  **prms;
	int			nprms;
	int			prms_cap;

	const SgCurveReader *reader;
	int64		seen;			/* points read, for messages */
	int64		points;			/* points emitted */
	char	   *error;
} SgR63Parse;

static void
sg_r63_fail(SgR63Parse *st, const char *reason)
{
	if (st->error == NULL)
		st->error = pstrdup(reason);
}

/* Fails with a sentence about the current point ("Point 3 of the file ..."). */
static void
sg_r63_fail_point(SgR63Parse *st, const char *what)
{
	char	   *msg;

	if (st->error != NULL)
		return;
	msg = psprintf("Point %lld of the file %s.", (long long) st->seen, what);
	st->error = msg;
}

/* A PRM string of its own for a new series (NULL stays NULL). */
static const char *
sg_r63_series_prm(SgR63Parse *st, const char *prm)
{
	if (prm == NULL)
		return NULL;
	if (st->nprms == st->prms_cap)
	{
		st->prms_cap = st->prms_cap ? st->prms_cap * 2 : 8;
		st->prms = st->prms ? repalloc(st->prms, st->prms_cap * sizeof(char *))
			: palloc(st->prms_cap * sizeof(char *));
	}
	st->prms[st->nprms] = pstrdup(prm);
	return st->prms[st->nprms++];
}

static void
sg_r63_clear_point(SgR63Parse *st)
{
	if (st->pt_v)
		pfree(st->pt_v);
	if (st->pt_d)
		pfree(st->pt_d);
	if (st->pt_p)
		pfree(st->pt_p);
	st->pt_v = st->pt_d = st->pt_p = NULL;
	st->pt_has_v = false;
}

static void
sg_r63_hold(SgR63Parse *st, TimestampTz ts, int64 step_s, bool isnull, double v)
{
	if (st->nheld == st->held_cap)
	{
		st->held_cap = st->held_cap ? st->held_cap * 2 : 1024;
		st->held = st->held ? repalloc(st->held, st->held_cap * sizeof(SgR63Held))
			: palloc(st->held_cap * sizeof(SgR63Held));
	}
	st->held[st->nheld].series = st->series_no;
	st->held[st->nheld].ts = ts;
	st->held[st->nheld].step_s = step_s;
	st->held[st->nheld].isnull = isnull;
	st->held[st->nheld].v = v;
	st->nheld++;
}

/* The end of a mesure: points held for want of its PRM go out now. */
static void
sg_r63_mesure_end(SgR63Parse *st)
{
	const char *prm = st->prm ? st->prm : st->reader->default_prm;
	const char *series_prm = NULL;
	int			series = -1;
	int64		i;

	for (i = 0; i < st->nheld; i++)
	{
		SgR63Held  *h = &st->held[i];

		if (h->series != series)
		{
			series = h->series;
			series_prm = sg_r63_series_prm(st, prm);
		}
		st->points++;
		st->reader->point(st->reader->point_arg, series_prm, h->ts, h->step_s,
						  h->isnull, h->v);
	}
	st->nheld = 0;
	if (st->prm)
		pfree(st->prm);
	st->prm = NULL;
}

/*
 * The instants a Paris local time (read as if it were UTC, "wall") names,
 * earliest first: one, two in the repeated autumn hour, none in the hour
 * the spring change skips.  Returns how many, or -1 out of range.
 */
static int
sg_r63_local_instants(SgR63Parse *st, TimestampTz wall, TimestampTz cand[2])
{
	const SgCurveReader *r = st->reader;
	int			offs[2];
	int			n = 0;
	int			i;

	/* the offsets in force a day either side cover any change in between */
	if (wall < MIN_TIMESTAMP + USECS_PER_DAY || wall > END_TIMESTAMP - USECS_PER_DAY ||
		!r->utc_offset(r->tz_arg, wall - USECS_PER_DAY, &offs[0]) ||
		!r->utc_offset(r->tz_arg, wall + USECS_PER_DAY, &offs[1]))
		return -1;
	/* a larger offset east of UTC gives the earlier instant */
	if (offs[0] < offs[1])
	{
		int			t = offs[0];

		offs[0] = offs[1];
		offs[1] = t;
	}
	for (i = 0; i < 2; i++)
	{
		TimestampTz u = wall - (TimestampTz) offs[i] * USECS_PER_SEC;
		int			check;

		if (i == 1 && offs[1] == offs[0])
			break;
		if (IS_VALID_TIMESTAMP(u) && r->utc_offset(r->tz_arg, u, &check) && check == offs[i])
			cand[n++] = u;
	}
	return n;
}

/* The end of a point object: checks it and hands it on. */
static void
sg_r63_point(SgR63Parse *st)
{
	int64		step_usec;
	int			step_days;
	char		buf[48];
	size_t		dlen;
	SgIsoDateTime dt;
	TimestampTz cand[2];
	int			ncand;
	TimestampTz end = 0;
	TimestampTz start;
	bool		found = false;
	bool		isnull = true;
	double		v = 0;
	int			i;

	if (st->pt_d == NULL)
		return sg_r63_fail_point(st, "has no \"d\"");
	if (st->pt_p == NULL)
		return sg_r63_fail_point(st, "has no \"p\"");

	/* the step: a fixed duration of whole seconds, at most a day */
	if (!sg_iso_parse_period(st->pt_p, &step_usec, &step_days) || step_days != 0 ||
		step_usec % USECS_PER_SEC != 0 || step_usec > USECS_PER_DAY)
		return sg_r63_fail_point(st, "has a \"p\" that is no load-curve step (such as PT30M)");

	/* the end of the step: "2024-03-31 00:30:00", Paris time; an offset is taken as given */
	dlen = strlen(st->pt_d);
	if (dlen < 16 || dlen >= sizeof(buf))
		return sg_r63_fail_point(st, "has a \"d\" that is no date-time (such as 2024-03-31 00:30:00)");
	memcpy(buf, st->pt_d, dlen + 1);
	if (buf[10] == ' ')
		buf[10] = 'T';
	if (!sg_iso_scan_datetime(buf, &dt) || dt.time_start == NULL || dt.zone_start != NULL)
		return sg_r63_fail_point(st, "has a \"d\" that is no date-time (such as 2024-03-31 00:30:00)");
	if (dt.has_offset)
	{
		if (!sg_iso_datetime_utc(&dt, &cand[0]))
			return sg_r63_fail_point(st, "has a \"d\" that is out of range");
		ncand = 1;
	}
	else
	{
		TimestampTz wall;

		if (!sg_iso_datetime_utc(&dt, &wall))
			return sg_r63_fail_point(st, "has a \"d\" that is out of range");
		ncand = sg_r63_local_instants(st, wall, cand);
		if (ncand < 0)
			return sg_r63_fail_point(st, "has a \"d\" that is out of range");
		if (ncand == 0)
			return sg_r63_fail_point(st, "has a \"d\" that does not exist in Paris (the hour skipped when clocks go forward)");
	}

	/* the first instant that follows the series' last point (see above) */
	for (i = 0; i < ncand && !found; i++)
	{
		start = cand[i] - step_usec;
		if (IS_VALID_TIMESTAMP(start) && (!st->have_last || start >= st->last_end))
		{
			end = cand[i];
			found = true;
		}
	}
	if (!found)
		return sg_r63_fail_point(st, st->have_last ?
								 "overlaps the point before it, or goes back in time" :
								 "has a \"d\" that is out of range");
	start = end - step_usec;

	/* the mean power in W: a numeric string (or number), null or absent for none */
	if (st->pt_v != NULL)
	{
		char	   *stop;

		errno = 0;
		v = strtod(st->pt_v, &stop);
		if (stop == st->pt_v || *stop != '\0' || errno != 0 || !isfinite(v))
			return sg_r63_fail_point(st, "has a \"v\" that is not a number");
		isnull = false;
	}

	st->have_last = true;
	st->last_end = end;
	if (st->streaming)
	{
		st->points++;
		st->reader->point(st->reader->point_arg, st->series_prm, start,
						  step_usec / USECS_PER_SEC, isnull, v);
	}
	else
		sg_r63_hold(st, start, step_usec / USECS_PER_SEC, isnull, v);
}

/* Enters an object or array of the given kind. */
static void
sg_r63_push(SgR63Parse *st, SgR63Kind kind)
{
	st->depth++;
	Assert(st->depth <= SG_R63_MAX_DEPTH);
	st->kind[st->depth] = kind;
	st->field = SG_R63_F_OTHER;
}

static SG_JSON_CB
sg_r63_object_start(void *state)
{
	SgR63Parse *st = (SgR63Parse *) state;
	SgR63Kind	parent = st->depth > 0 ? st->kind[st->depth] : SG_R63_SKIP;
	SgR63Kind	kind = SG_R63_SKIP;

	if (st->error)
		SG_JSON_FAIL;
	if (st->depth == 0)
		kind = SG_R63_ROOT;
	else if (parent == SG_R63_MESURES)
	{
		kind = SG_R63_MESURE;
		st->series_no = 0;
	}
	else if (parent == SG_R63_GRANDEURS)
	{
		kind = SG_R63_GRANDEUR;
		st->series_no++;
		st->streaming = st->prm != NULL;
		st->series_prm = sg_r63_series_prm(st, st->prm);
		st->have_last = false;
	}
	else if (parent == SG_R63_POINTS)
	{
		kind = SG_R63_POINT;
		st->seen++;
		sg_r63_clear_point(st);
	}
	else if (parent == SG_R63_POINT)
		sg_r63_fail_point(st, "has a field that is an object");
	else if (parent != SG_R63_SKIP && st->field != SG_R63_F_OTHER)
		sg_r63_fail(st, "The file is not an R63 load curve: a known field is an object.");
	sg_r63_push(st, kind);
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_r63_object_end(void *state)
{
	SgR63Parse *st = (SgR63Parse *) state;

	if (st->error)
		SG_JSON_FAIL;
	switch (st->kind[st->depth])
	{
		case SG_R63_POINT:
			sg_r63_point(st);
			sg_r63_clear_point(st);
			break;
		case SG_R63_MESURE:
			sg_r63_mesure_end(st);
			break;
		default:
			break;
	}
	st->depth--;
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_r63_array_start(void *state)
{
	SgR63Parse *st = (SgR63Parse *) state;
	SgR63Kind	parent = st->depth > 0 ? st->kind[st->depth] : SG_R63_SKIP;
	SgR63Kind	kind = SG_R63_SKIP;

	if (st->error)
		SG_JSON_FAIL;
	if (st->depth == 0)
		sg_r63_fail(st, "The file is not an R63 load curve: it is not a JSON object.");
	else if (parent == SG_R63_ROOT && st->field == SG_R63_F_MESURES)
	{
		kind = SG_R63_MESURES;
		st->has_mesures = true;
	}
	else if (parent == SG_R63_MESURE && st->field == SG_R63_F_GRANDEUR)
		kind = SG_R63_GRANDEURS;
	else if (parent == SG_R63_GRANDEUR && st->field == SG_R63_F_POINTS)
		kind = SG_R63_POINTS;
	else if (parent == SG_R63_MESURES || parent == SG_R63_GRANDEURS || parent == SG_R63_POINTS)
		sg_r63_fail(st, "The file is not an R63 load curve: an element of \"mesures\", \"grandeur\" or \"points\" is not an object.");
	else if (parent == SG_R63_POINT)
		sg_r63_fail_point(st, "has a field that is an array");
	else if (parent != SG_R63_SKIP && st->field != SG_R63_F_OTHER)
		sg_r63_fail(st, "The file is not an R63 load curve: \"idPrm\" or \"unite\" is an array.");
	sg_r63_push(st, kind);
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_r63_array_end(void *state)
{
	SgR63Parse *st = (SgR63Parse *) state;

	if (st->error)
		SG_JSON_FAIL;
	st->depth--;
	SG_JSON_RETURN;
}

static SG_JSON_CB
sg_r63_field_start(void *state, char *fname, bool isnull)
{
	SgR63Parse *st = (SgR63Parse *) state;
	SgR63Field	f = SG_R63_F_OTHER;

	if (st->error)
	{
		pfree(fname);
		SG_JSON_FAIL;
	}
	switch (st->kind[st->depth])
	{
		case SG_R63_ROOT:
			if (strcmp(fname, "mesures") == 0)
				f = SG_R63_F_MESURES;
			break;
		case SG_R63_MESURE:
			if (strcmp(fname, "idPrm") == 0)
				f = SG_R63_F_IDPRM;
			else if (strcmp(fname, "grandeur") == 0)
				f = SG_R63_F_GRANDEUR;
			break;
		case SG_R63_GRANDEUR:
			if (strcmp(fname, "unite") == 0)
				f = SG_R63_F_UNITE;
			else if (strcmp(fname, "points") == 0)
				f = SG_R63_F_POINTS;
			break;
		case SG_R63_POINT:
			if (strcmp(fname, "v") == 0)
				f = SG_R63_F_V;
			else if (strcmp(fname, "d") == 0)
				f = SG_R63_F_D;
			else if (strcmp(fname, "p") == 0)
				f = SG_R63_F_P;
			break;
		default:
			break;
	}
	st->field = f;
	pfree(fname);
	SG_JSON_RETURN;
}

/* A scalar field of a point: keeps its token (the parser gave it to us). */
static void
sg_r63_point_field(SgR63Parse *st, char **token, JsonTokenType tokentype)
{
	char	  **slot;

	switch (st->field)
	{
		case SG_R63_F_V:
			slot = &st->pt_v;
			if (st->pt_has_v)
				return sg_r63_fail_point(st, "has more than one \"v\"");
			st->pt_has_v = true;
			if (tokentype == JSON_TOKEN_NULL)
				return;
			if (tokentype != JSON_TOKEN_STRING && tokentype != JSON_TOKEN_NUMBER)
				return sg_r63_fail_point(st, "has a \"v\" that is not a number");
			break;
		case SG_R63_F_D:
		case SG_R63_F_P:
			slot = st->field == SG_R63_F_D ? &st->pt_d : &st->pt_p;
			if (*slot != NULL)
				return sg_r63_fail_point(st, st->field == SG_R63_F_D ?
										 "has more than one \"d\"" : "has more than one \"p\"");
			if (tokentype != JSON_TOKEN_STRING)
				return sg_r63_fail_point(st, st->field == SG_R63_F_D ?
										 "has a \"d\" that is not a string" :
										 "has a \"p\" that is not a string");
			break;
		default:
			return;				/* n, iv, ec and the like are not needed */
	}
	*slot = *token;
	*token = NULL;
}

static SG_JSON_CB
sg_r63_scalar(void *state, char *token, JsonTokenType tokentype)
{
	SgR63Parse *st = (SgR63Parse *) state;

	if (st->error == NULL)
	{
		switch (st->depth == 0 ? SG_R63_SKIP : st->kind[st->depth])
		{
			case SG_R63_SKIP:
				if (st->depth == 0)
					sg_r63_fail(st, "The file is not an R63 load curve: it is not a JSON object.");
				break;
			case SG_R63_ROOT:
				if (st->field == SG_R63_F_MESURES)
					sg_r63_fail(st, "The file is not an R63 load curve: \"mesures\" is not an array.");
				break;
			case SG_R63_MESURES:
			case SG_R63_GRANDEURS:
			case SG_R63_POINTS:
				sg_r63_fail(st, "The file is not an R63 load curve: an element of \"mesures\", \"grandeur\" or \"points\" is not an object.");
				break;
			case SG_R63_MESURE:
				if (st->field == SG_R63_F_GRANDEUR && tokentype != JSON_TOKEN_NULL)
					sg_r63_fail(st, "The file is not an R63 load curve: \"grandeur\" is not an array.");
				else if (st->field == SG_R63_F_IDPRM)
				{
					if (tokentype != JSON_TOKEN_STRING || strlen(token) != 14 ||
						strspn(token, "0123456789") != 14)
						sg_r63_fail(st, "An \"idPrm\" is not a 14-digit PRM.");
					else if (st->prm != NULL)
						sg_r63_fail(st, "A mesure has more than one \"idPrm\".");
					else
					{
						st->prm = token;
						token = NULL;
					}
				}
				break;
			case SG_R63_GRANDEUR:
				if (st->field == SG_R63_F_POINTS && tokentype != JSON_TOKEN_NULL)
					sg_r63_fail(st, "The file is not an R63 load curve: \"points\" is not an array.");
				else if (st->field == SG_R63_F_UNITE &&
						 (tokentype != JSON_TOKEN_STRING || strcmp(token, "W") != 0))
					sg_r63_fail(st, "A series of the load curve is not in W (its \"unite\").");
				break;
			case SG_R63_POINT:
				sg_r63_point_field(st, &token, tokentype);
				break;
		}
	}
	if (token)
		pfree(token);
	if (st->error)
		SG_JSON_FAIL;
	SG_JSON_RETURN;
}

int64
sg_r63_parse(char *body, size_t len, const SgCurveReader *reader, char **error)
{
	JsonSemAction sem;
	SgR63Parse	st;
	char	   *complaint;

	*error = NULL;
	if (sg_json_too_deep(body, len, SG_R63_MAX_DEPTH))
	{
		*error = pstrdup("The body nests deeper than an R63 load curve.");
		return -1;
	}

	memset(&st, 0, sizeof(st));
	st.reader = reader;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = sg_r63_object_start;
	sem.object_end = sg_r63_object_end;
	sem.object_field_start = sg_r63_field_start;
	sem.array_start = sg_r63_array_start;
	sem.array_end = sg_r63_array_end;
	sem.scalar = sg_r63_scalar;

	complaint = sg_json_run(body, len, &sem);
	if (st.error == NULL)
		st.error = complaint;
	else if (complaint != NULL)
		pfree(complaint);
	if (st.error == NULL && !st.has_mesures)
		st.error = pstrdup("The file is not an R63 load curve: it has no \"mesures\" array.");
	sg_r63_clear_point(&st);
	if (st.prm)
		pfree(st.prm);
	if (st.held)
		pfree(st.held);
	while (st.nprms > 0)
		pfree(st.prms[--st.nprms]);
	if (st.prms)
		pfree(st.prms);

	if (st.error != NULL)
	{
		*error = st.error;
		return -1;
	}
	return st.points;
}
