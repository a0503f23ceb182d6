/*-------------------------------------------------------------------------
 * iso8601.c
 *	  The ISO 8601 date-times and durations the Switchgrid API reads and
 *	  writes, parsed without the server: bytes in, values out.
 *
 * Nothing here raises an error, allocates, or knows SQL: the callers turn
 * a false into the error that fits them (a user's "since" is 22007, a
 * server's "startsAt" is a malformed response).  The same source builds
 * into the fuzz harness with -DFRONTEND (test/fuzz).
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "iso8601.h"

/* Julian day numbers, as PostgreSQL's date2j() counts them. */
#define SG_J2000 2451545		/* 2000-01-01, PostgreSQL's epoch */

static int
sg_iso_date2j(int y, int m, int d)
{
	int			julian;
	int			century;

	if (m > 2)
	{
		m += 1;
		y += 4800;
	}
	else
	{
		m += 13;
		y += 4799;
	}
	century = y / 100;
	julian = y * 365 - 32167;
	julian += y / 4 - century + century / 4;
	julian += 7834 * m / 256 + d;
	return julian;
}

static bool
sg_iso_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly n digits into *v; returns the position after them, or NULL. */
static const char *
sg_iso_digits(const char *p, int n, int *v)
{
	int			x = 0;

	while (n-- > 0)
	{
		if (*p < '0' || *p > '9')
			return NULL;
		x = x * 10 + (*p++ - '0');
	}
	if (v)
		*v = x;
	return p;
}

bool
sg_iso_scan_datetime(const char *s, SgIsoDateTime *dt)
{
	const char *p = s;

	memset(dt, 0, sizeof(*dt));

	/* YYYY-MM-DD */
	if ((p = sg_iso_digits(p, 4, &dt->year)) == NULL || *p++ != '-' ||
		(p = sg_iso_digits(p, 2, &dt->month)) == NULL || *p++ != '-' ||
		(p = sg_iso_digits(p, 2, &dt->day)) == NULL)
		return false;
	dt->date_len = (int) (p - s);

	/* THH:MM[:SS[.fff]] */
	if (*p == 'T')
	{
		dt->time_start = ++p;
		if ((p = sg_iso_digits(p, 2, &dt->hour)) == NULL || *p++ != ':' ||
			(p = sg_iso_digits(p, 2, &dt->minute)) == NULL)
			return false;
		if (*p == ':')
		{
			if ((p = sg_iso_digits(p + 1, 2, &dt->second)) == NULL)
				return false;
			if (*p == '.')
			{
				const char *q = ++p;
				int64		scale = 100000;

				while (*p >= '0' && *p <= '9')
				{
					if (scale > 0)
						dt->usec += (*p - '0') * scale;
					else if (p - q == 6 && *p >= '5')
						dt->usec++;		/* round the seventh digit */
					scale /= 10;
					p++;
				}
				if (p == q)
					return false;
			}
		}
		dt->time_len = (int) (p - dt->time_start);

		/* Z | +HH[:MM] | -HH[:MM] */
		if (*p == 'Z')
		{
			dt->offset_start = p++;
			dt->has_offset = dt->offset_ok = true;
		}
		else if (*p == '+' || *p == '-')
		{
			int			sign = (*p == '-') ? -1 : 1;
			int			hh,
						mm = 0;
			bool		colon = false;

			dt->offset_start = p++;
			if ((p = sg_iso_digits(p, 2, &hh)) == NULL)
				return false;
			if (*p == ':')
			{
				colon = true;
				p++;
			}
			if (*p >= '0' && *p <= '9')
			{
				if ((p = sg_iso_digits(p, 2, &mm)) == NULL)
					return false;
				colon = false;
			}
			dt->has_offset = true;
			/* PostgreSQL takes offsets up to 15:59 */
			dt->offset_ok = !colon && hh <= 15 && mm <= 59;
			dt->offset_s = sign * (hh * 3600 + mm * 60);
		}
		if (dt->offset_start)
			dt->offset_len = (int) (p - dt->offset_start);
	}

	/* [Zone/Name] */
	if (*p == '[')
	{
		dt->zone_start = ++p;
		while (*p && (isalnum((unsigned char) *p) || strchr("_/+-", *p) != NULL))
			p++;
		if (*p != ']' || p == dt->zone_start)
			return false;
		dt->zone_len = (int) (p - dt->zone_start);
		p++;
	}
	return *p == '\0';
}

bool
sg_iso_datetime_utc(const SgIsoDateTime *dt, TimestampTz *ts)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int64		days;
	int64		secs;
	int64		result;

	if (dt->zone_start != NULL && !dt->has_offset)
		return false;			/* a zone name alone needs a tz database */
	if (dt->has_offset && !dt->offset_ok)
		return false;
	if (dt->year < 1 || dt->month < 1 || dt->month > 12 || dt->day < 1 ||
		dt->day > mdays[dt->month - 1] + (dt->month == 2 && sg_iso_leap(dt->year)))
		return false;
	/* as PostgreSQL: 24:00:00 is the end of the day, a 60th second rolls over */
	if (dt->hour > 24 || dt->minute > 59 || dt->second > 60 ||
		(dt->hour == 24 && (dt->minute > 0 || dt->second > 0 || dt->usec > 0)))
		return false;

	days = sg_iso_date2j(dt->year, dt->month, dt->day) - SG_J2000;
	secs = ((days * 24 + dt->hour) * 60 + dt->minute) * 60 + dt->second - dt->offset_s;
	result = secs * USECS_PER_SEC + dt->usec;
	if (!IS_VALID_TIMESTAMP(result))
		return false;
	*ts = result;
	return true;
}

bool
sg_iso_parse_period(const char *s, int64 *usec, int *days)
{
	const char *p = s;
	int64		secs = 0;
	int			d = 0;
	bool		in_time = false;
	bool		any = false;
	char		seen[4] = {0, 0, 0, 0}; /* D, H, M, S: each unit once */

	if (*p != 'P' && *p != 'p')
		return false;
	p++;
	while (*p)
	{
		int64		n = 0;
		const char *q;

		if (*p == 'T' || *p == 't')
		{
			if (in_time)
				return false;
			in_time = true;
			p++;
			continue;
		}
		q = p;
		/* a step of more than a year is no load curve: bound the numbers */
		while (*p >= '0' && *p <= '9')
		{
			n = n * 10 + (*p++ - '0');
			if (n > 366 * 86400)
				return false;
		}
		if (p == q)
			return false;
		switch (pg_toupper((unsigned char) *p))
		{
			case 'D':
				if (in_time || seen[0]++)
					return false;
				d = (int) Min(n, 366);
				break;
			case 'H':
				if (!in_time || seen[1]++)
					return false;
				secs += n * 3600;
				break;
			case 'M':
				if (!in_time || seen[2]++)
					return false;
				secs += n * 60;
				break;
			case 'S':
				if (!in_time || seen[3]++)
					return false;
				secs += n;
				break;
			default:
				return false;
		}
		p++;
		any = true;
	}
	if (!any || (d > 0 && secs > 0) || (d == 0 && secs == 0))
		return false;
	*usec = secs * USECS_PER_SEC;
	*days = d;
	return true;
}

const char *
sg_iso_period_param(const char *period)
{
	static const struct
	{
		const char *name;
		int64		secs;
	}			periods[] = {
		{"5min", 300}, {"10min", 600}, {"15min", 900}, {"30min", 1800}, {"1h", 3600},
	};
	int64		usec;
	int			days;
	size_t		i;

	if (strcmp(period, "1d") == 0)
		return "1d";
	for (i = 0; i < lengthof(periods); i++)
	{
		if (strcmp(period, periods[i].name) == 0)
			return periods[i].name;
	}
	if (sg_iso_parse_period(period, &usec, &days))
	{
		if (days == 1)
			return "1d";
		for (i = 0; i < lengthof(periods); i++)
		{
			if (days == 0 && usec == periods[i].secs * USECS_PER_SEC)
				return periods[i].name;
		}
	}
	return NULL;
}
