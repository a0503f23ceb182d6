#!/usr/bin/env python3
"""Offline simulator of the Switchgrid REST API (Enedis meter data).

It is both the fixture of switchgrid's tests and a sandbox for developing
against the API without an account: it answers the endpoints of
https://app.switchgrid.tech/enedis/v2 the way the public guide and OpenAPI
spec describe them, with a fixed catalogue of meters, deterministic load
curves and the raw Enedis payloads behind each `dataUrl`.

Run it::

    switchgrid_sim.py --listen 127.0.0.1:0 --data-listen 127.0.0.1:0 \\
        --token sim-token --ready-file /tmp/sim.ready

Once both servers listen, the ready file holds (written atomically)::

    {"base_url": "http://127.0.0.1:P/enedis/v2", "data_url": "http://127.0.0.1:Q",
     "control_url": "http://127.0.0.1:P/_sim", "pid": N}

What it serves
  * on the API port: the API under /enedis/v2 (bearer token required), the
    consent page an end user signs at /c/<askId> (no token), and a control
    API for tests under /_sim (no token: faults, request log, webhooks);
  * on the data port, a different origin: /files/<requestId>.json, the raw
    Enedis JSON a `dataUrl` points at. A client must not send its token
    there; every request's Authorization header (present or not) is logged.

Behaviour in short
  * Orders evolve with time only: NOT_STARTED, PENDING after --pending-ms,
    SUCCESS or FAILED after --complete-ms (--long-complete-ms for load
    curves over more than 7 days, R67 and C68_ASYNC). A background thread
    notices the transitions, so webhooks go out without anyone polling.
  * Load-curve values are a pure function of (PRM, direction, UTC step start,
    step): the same request gives the same values in any process, at any
    time. Daily energies, indexes and maximum powers are derived from the
    same curve, so R65(d) = R64(d+1) - R64(d) = the day's integral in Wh.
  * Meters of the catalogue (see CATALOGUE and README.md) reproduce Enedis
    failures: a load curve never activated, no measures, unknown point, a
    meter without load curve, no injection contract.

What it does not do
  * no TLS, no persistence (all state is in memory), no rate limiting (use a
    429 fault), no PDF proof (GET /ask/{id}/proof), and consent scopes are
    recorded but not enforced.

Only the Python 3.11 standard library is used. Both servers only bind
loopback addresses.
"""

import argparse
import hashlib
import heapq
import hmac
import html
import json
import math
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# ---------------------------------------------------------------------------
# Constants: paths, enums, messages
# ---------------------------------------------------------------------------

API_PREFIX = "/enedis/v2"
CONTROL_PREFIX = "/_sim"
PAGE_PREFIX = "/c/"

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")

# Every id the simulator derives (contract ids, the organization id) is a
# uuid5 in this namespace, so they are the same in every run.
SIM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://app.switchgrid.tech/enedis/v2#simulator")
ORGANIZATION_ID = str(uuid.uuid5(SIM_NAMESPACE, "organization"))

ASK_STATUSES = ("CREATED", "PENDING_ADDRESS_CHECK", "ADDRESS_CHECK_FAILED",
                "PREPARING_CONSENT_COLLECTION", "PENDING_USER_ACTION", "ACCEPTED")
PURPOSES = ("ENERGY_PERFORMANCE_STUDY", "SOLAR_INSTALLATION_SIZING", "DEMAND_RESPONSE",
            "ENERGY_BROKERAGE", "VEHICLE_CHARGE_DETECTION")


def _consent_durations():
    """'1 day'..'6 days', '1 week'..'4 weeks', '1 month'..'6 months', '1 year'..'20 years'."""
    out = {}
    for unit, most in (("day", 6), ("week", 4), ("month", 6), ("year", 20)):
        for n in range(1, most + 1):
            out["%d %s%s" % (n, unit, "" if n == 1 else "s")] = (n, unit)
    return out


CONSENT_DURATIONS = _consent_durations()

MSG_NO_LOADCURVE_SERVICE = ("La demande ne peut aboutir : aucun service souscrit de courbe de "
                            "charge n'est present pour la periode demandee")
MSG_NO_MEASURE = "SGT4G3: Aucune mesure trouvée sur ce point."
MSG_UNKNOWN_POINT = "SGT401: Demande non recevable : point inexistant"
MSG_NO_CURVE_METER = ("SGT4M8: Le dispositif de comptage du point ne permet pas de consulter "
                      "les données de courbe de charge.")
MSG_NO_INJECTION = ("SGT588: La demande ne peut pas aboutir, le client ne dispose pas d’un "
                    "contrat en injection sur ce point.")
MSG_NO_DATA = "Request not found or data not (yet) available"


@dataclass(frozen=True)
class RequestKind:
    """What one request type of POST /order accepts and produces."""
    directions: tuple        # allowed directions; () = none allowed
    default_direction: str | None
    dated: bool              # accepts since/until
    curve: bool              # a load curve (LOADCURVE at /request/{id}/data, R63 at dataUrl)
    measures: bool           # an Enedis measurement (fails on SGT4G3 meters)
    flux: str | None         # raw Enedis payload served at dataUrl
    always_long: bool = False
    long_if_over_7_days: bool = False


_R6X = ("SOUTIRAGE", "INJECTION")
REQUEST_KINDS = {
    "LOADCURVE": RequestKind(("CONSUMPTION", "INJECTION"), "CONSUMPTION", True, True, True, None,
                             long_if_over_7_days=True),
    "R63": RequestKind(_R6X, "SOUTIRAGE", True, True, True, "R63", long_if_over_7_days=True),
    "R63_SYNC": RequestKind(_R6X, "SOUTIRAGE", True, True, True, "R63"),
    "R64": RequestKind(_R6X, "SOUTIRAGE", True, False, True, "R64"),
    "R64_SYNC": RequestKind(_R6X, "SOUTIRAGE", True, False, True, "R64"),
    "R65": RequestKind(_R6X, "SOUTIRAGE", True, False, True, "R65"),
    "R65_SYNC": RequestKind(_R6X, "SOUTIRAGE", True, False, True, "R65"),
    "R66": RequestKind(_R6X, "SOUTIRAGE", True, False, True, "R66"),
    "R66_SYNC": RequestKind(_R6X, "SOUTIRAGE", True, False, True, "R66"),
    "R67": RequestKind(_R6X, "SOUTIRAGE", True, False, True, "R67", always_long=True),
    "C68": RequestKind((), None, False, False, False, "C68"),
    "C68_ASYNC": RequestKind(_R6X, "SOUTIRAGE", False, False, False, "C68_ASYNC", always_long=True),
}
RETRY_FLAG = "enedisRetryAfterLoadcurveActivation"

# GET /request/{id}/data periods, in seconds; None = a Europe/Paris day.
PERIODS = {"5min": 300, "10min": 600, "15min": 900, "30min": 1800, "1h": 3600, "1d": None}

# ---------------------------------------------------------------------------
# The catalogue of meters
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Meter:
    """One delivery point (PRM) and how the simulated Enedis treats it."""
    prm: str
    holder: str
    category: str            # RES | PRO
    street: str
    postal_code: str
    city: str
    address: dict            # adresseInstallationNormalisee, as search returns it
    step: int = 1800         # native load-curve step, seconds (what LOADCURVE serves)
    early_step: int | None = None  # the meter's step before step_change (a finer one)
    step_change: int | None = None  # UTC epoch second from which the step is `step`
    injection: bool = False  # has a production (injection) contract
    profile: str = "home"    # home | workshop: shape of the consumption curve
    meter_type: str = "LINKY"
    kva: int = 6             # subscribed power
    behaviour: str | None = None  # None | activation | no_measure | unknown_point | no_curve


def _lines(**lines):
    return dict(sorted(lines.items()))


CATALOGUE = (
    Meter("09111642617347", "Jeanne Dupond", "RES", "10 RUE DE LA PAIX", "75002", "PARIS",
          _lines(ligne4="10 RUE DE LA PAIX", ligne6="75002 PARIS"), kva=9),
    Meter("30001234567890", "SARL Les Tanneurs", "PRO", "ZI DES TANNEURS", "69007", "LYON",
          _lines(ligne1=None, ligne2="BATIMENT B", ligne3=None, ligne4="ZI DES TANNEURS",
                 ligne5=None, ligne6="69007 LYON", ligne7=None),
          step=600, injection=True, profile="workshop", meter_type="PME-PMI", kva=36),
    Meter("25946599093143", "Hélène Lefèvre & Fils", "RES", "3 PLACE DE L'ÉGLISE", "33000",
          "BORDEAUX", _lines(ligne4="3 PLACE DE L'ÉGLISE", ligne6="33000 BORDEAUX")),
    Meter("12345678901234", "Marc Sansservice", "RES", "5 AVENUE FOCH", "13008", "MARSEILLE",
          _lines(ligne2="APPARTEMENT 12", ligne4="5 AVENUE FOCH", ligne6="13008 MARSEILLE"),
          behaviour="activation"),
    Meter("98765432109876", "Paul Sansmesure", "RES", "1 RUE DU PORT", "44000", "NANTES",
          _lines(ligne4="1 RUE DU PORT", ligne6="44000 NANTES"), behaviour="no_measure"),
    Meter("11111111111111", "Anne Inexistant", "RES", "2 RUE NATIONALE", "59000", "LILLE",
          _lines(ligne4="2 RUE NATIONALE", ligne6="59000 LILLE"), behaviour="unknown_point"),
    Meter("22222222222222", "Lucie Vieuxcompteur", "RES", "8 RUE DES LILAS", "31000", "TOULOUSE",
          _lines(ligne4="8 RUE DES LILAS", ligne6="31000 TOULOUSE"), meter_type="CBE",
          behaviour="no_curve"),
    # PT10M until 2024-06-04 12:00 Paris (10:00 UTC), PT30M from then on
    Meter("33333333333333", "Nina Changepas", "RES", "4 RUE DE LA MONNAIE", "35000", "RENNES",
          _lines(ligne4="4 RUE DE LA MONNAIE", ligne6="35000 RENNES"),
          early_step=600, step_change=1717495200),
)
CATALOGUE_BY_PRM = {m.prm: m for m in CATALOGUE}


def contract_id(prm):
    """The contract id search returns for a PRM: uuid5(SIM_NAMESPACE, 'contract:' + prm)."""
    return str(uuid.uuid5(SIM_NAMESPACE, "contract:" + prm))


def generic_meter(prm, holder="CLIENT SIMULE", street="1 RUE DU SIMULATEUR",
                  postal_code="75001", city="PARIS"):
    """A residential Linky meter (PT30M, consumption only) for any other PRM."""
    return Meter(prm, holder, "RES", street, postal_code, city,
                 _lines(ligne4=street, ligne6=("%s %s" % (postal_code, city)).strip()))


def contract_json(meter):
    """A meter as GET /search_contract (and an Ask's `contracts`) show it."""
    return {
        "id": contract_id(meter.prm),
        "prm": meter.prm,
        "nomClientFinalOuDenominationSociale": meter.holder,
        "categorieClientFinalCode": meter.category,
        "adresseInstallationNormalisee": dict(meter.address),
    }


def fold(text):
    """Lower case, accents and punctuation removed, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


def name_matches(query, holder):
    """True if a word of the query of at least 3 characters appears in holder."""
    folded = fold(holder)
    return any(len(w) >= 3 and w in folded for w in fold(query).split())


# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------


def iso(dt):
    """An aware datetime as the API writes instants: UTC, milliseconds, Z."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def iso_ms(ms):
    return iso(datetime.fromtimestamp(ms / 1000.0, UTC))


def from_epoch(seconds):
    return datetime.fromtimestamp(seconds, UTC)


def paris_midnight(day):
    """The UTC instant of 00:00 in Europe/Paris on date `day`."""
    return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


def paris_date(dt):
    return dt.astimezone(PARIS).date()


def paris_days(since, until):
    """The Paris dates d with date(since) <= d < date(until)."""
    first, last = paris_date(since), paris_date(until)
    return [first + timedelta(days=i) for i in range((last - first).days)]


def local_stamp(dt):
    """Enedis' raw timestamp: Paris local time, no offset."""
    return dt.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")


_INSTANT_RE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}))?)?"
    r"(?P<off>Z|[+-]\d{2}:\d{2})?"
    r"(?:\[(?P<zone>[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*)\])?)?")


def parse_instant(text):
    """Parse since/until in the guide's forms; returns an aware UTC datetime.

    2024-12-10, 2024-12-10T00:00:00, 2024-12-10T12:00:00Z,
    2024-12-10T00:00:00+01:00, 2024-12-10T00:00:00[Europe/Paris],
    2024-12-10T00:00:00[CET]. Without offset or zone, the time is UTC.
    Raises ValueError with a readable message.
    """
    if not isinstance(text, str):
        raise ValueError("expected a date-time string")
    m = _INSTANT_RE.fullmatch(text)
    if not m:
        raise ValueError("%r is not an ISO 8601 date-time" % text)
    frac = (m["frac"] or "0")[:6].ljust(6, "0")
    try:
        naive = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"] or 0),
                         int(m["mi"] or 0), int(m["s"] or 0), int(frac))
    except ValueError as e:
        raise ValueError("%r is not a valid date-time: %s" % (text, e)) from None
    tz = UTC
    if m["zone"]:
        try:
            tz = ZoneInfo(m["zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone %r" % m["zone"]) from None
    if m["off"] and m["off"] != "Z":
        sign = 1 if m["off"][0] == "+" else -1
        hours, minutes = int(m["off"][1:3]), int(m["off"][4:6])
        if hours > 18 or minutes > 59:
            raise ValueError("%r has an invalid UTC offset" % text)
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    elif m["off"] == "Z":
        tz = UTC
    return naive.replace(tzinfo=tz).astimezone(UTC)


def add_duration(dt, n, unit):
    """dt plus a consent duration (calendar months and years)."""
    if unit == "day":
        return dt + timedelta(days=n)
    if unit == "week":
        return dt + timedelta(weeks=n)
    months = n if unit == "month" else 12 * n
    y, m = divmod(dt.month - 1 + months, 12)
    year, month = dt.year + y, m + 1
    last_day = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return dt.replace(year=year, month=month, day=min(dt.day, last_day))


# ---------------------------------------------------------------------------
# Deterministic load curves
# ---------------------------------------------------------------------------

_M64 = (1 << 64) - 1


def _mix(x):
    """splitmix64's finalizer: a well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _seed(*parts):
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _unit(seed, n):
    """A number in [0, 1) that depends only on (seed, n)."""
    return _mix(seed ^ ((n * 0xD1B54A32D192ED03) & _M64)) / 18446744073709551616.0


def _bump(x, centre, width):
    return math.exp(-((x - centre) / width) ** 2)


class Curve:
    """The load curve of one meter in one direction.

    value(t) is the mean power in W over the native step starting at UTC
    epoch second t; it depends on nothing but (PRM, direction, t, step).
    served(t) is value(t), or None for the ~1 % of steps that are gaps.
    """

    def __init__(self, meter, direction):
        self.meter = meter
        self.step = meter.step
        self.injection = direction == "INJECTION"
        key = "%s|%s|%d" % (meter.prm, "INJECTION" if self.injection else "CONSUMPTION", meter.step)
        self._noise = _seed(key, "noise")
        self._gap = _seed(key, "gap")
        self._day = _seed(key, "day")
        base = _seed(meter.prm, "scale")
        if self.injection:
            self._scale = 4200 + base % 1200            # peak W of the panels
        elif meter.profile == "workshop":
            self._scale = 800 + base % 200
            self._floor = 250
        else:
            self._scale = 650 + base % 400
            self._floor = 180 + base % 60               # fridge, standby

    def is_gap(self, t):
        return _unit(self._gap, t // 60) < 0.01

    def served(self, t):
        return None if self.is_gap(t) else self.value(t)

    def step_at(self, t):
        """The meter's own step (seconds) of the step that starts at t."""
        m = self.meter
        return m.early_step if m.step_change is not None and t < m.step_change else self.step

    def value(self, t):
        mid = t + self.step_at(t) / 2.0
        local = datetime.fromtimestamp(mid, PARIS)
        day_no = local.toordinal()
        if self.injection:
            watts = self._solar(mid, day_no)
        else:
            hour = local.hour + local.minute / 60.0 + local.second / 3600.0
            season = math.cos(2 * math.pi * (day_no - 15) / 365.2425)   # 1 mid-January
            day_factor = 0.85 + 0.3 * _unit(self._day, day_no)
            noise = 0.88 + 0.24 * _unit(self._noise, t // 60)
            if self.meter.profile == "workshop":
                shape = self._workshop(hour, local.weekday())
                watts = (self._floor + self._scale * shape * (1.1 + 0.3 * season)) * day_factor * noise
            else:
                shape = self._home(hour, local.weekday())
                watts = (self._floor + self._scale * shape * (1.25 + 0.75 * season)) * day_factor * noise
            watts = min(max(watts, 150.0), 6000.0)
        return int(math.floor(watts + 0.5))

    @staticmethod
    def _home(hour, weekday):
        """Night low, a morning and a larger evening peak."""
        shape = (0.34 + 0.85 * _bump(hour, 7.3, 1.1) + 0.35 * _bump(hour, 12.8, 1.6)
                 + 1.35 * _bump(hour, 19.6, 1.7) + 0.25 * _bump(hour, 22.5, 1.0))
        if 1.0 <= hour < 5.0:
            shape *= 0.8
        if weekday >= 5:
            shape += 0.3 * _bump(hour, 11.0, 2.5)
        return shape

    @staticmethod
    def _workshop(hour, weekday):
        """Business hours on weekdays, idle at night and at weekends."""
        if weekday >= 5:
            return 0.5
        if 7.0 <= hour < 12.0 or 13.5 <= hour < 18.5:
            return 3.2
        if 12.0 <= hour < 13.5:
            return 1.8
        if 6.0 <= hour < 7.0 or 18.5 <= hour < 20.0:
            return 1.2
        return 0.45

    def _solar(self, mid, day_no):
        """A bell around solar noon (about 11:50 UTC in France), 0 at night."""
        summer = math.cos(2 * math.pi * (day_no - 172) / 365.2425)      # 1 at the June solstice
        half_day = 6.1 + 2.1 * summer
        x = (mid % 86400) / 3600.0 - 11.8
        if abs(x) >= half_day:
            return 0
        clouds = 0.3 + 0.7 * _unit(self._day, day_no)
        noise = 0.93 + 0.14 * _unit(self._noise, int(mid) // 60)
        peak = self._scale * (0.55 + 0.45 * summer) * clouds * noise
        return peak * math.cos(math.pi / 2 * x / half_day) ** 1.5

    # -- series ------------------------------------------------------------

    def steps(self, start, end):
        """The native step starts t (epoch seconds) covering [start, end)."""
        s = self.step
        first = int(start.timestamp()) // s * s
        last = -(-int(math.ceil(end.timestamp())) // s) * s
        return range(first, last, s)

    def raw_steps(self, start, end):
        """[(t, step)]: the meter's own steps covering [start, end), whatever their length.

        The same as steps() for a meter whose step never changes; around a
        step change, finer steps before it and coarser ones from it.
        """
        first = int(start.timestamp())
        t = first // self.step_at(first) * self.step_at(first)
        stop = int(math.ceil(end.timestamp()))
        out = []
        while t < stop:
            out.append((t, self.step_at(t)))
            t += self.step_at(t)
        return out

    def day_summary(self, day):
        """(energy Wh, off-peak Wh, max VA, local time of the max) for a Paris day.

        Energy is the integral of the curve over the day, gaps included (a gap
        is a missing measure, not missing energy): sum(value * step) / 3600,
        rounded. Off-peak (HC) hours are 22:30-06:30 local time.
        """
        total = off_peak = 0.0
        best, best_t = -1, 0
        varying = self.meter.step_change is not None
        for t, step in self.raw_steps(paris_midnight(day), paris_midnight(day + timedelta(days=1))):
            v = self.value(t)
            # a meter whose step changes weighs each value by its step
            # (in seconds: the scale below is then 1/3600)
            w = v * step if varying else v
            total += w
            local = datetime.fromtimestamp(t, PARIS)
            minute = local.hour * 60 + local.minute
            if minute >= 22 * 60 + 30 or minute < 6 * 60 + 30:
                off_peak += w
            if v > best:
                best, best_t = v, t
        scale = 1 / 3600.0 if varying else self.step / 3600.0
        wh = int(math.floor(total * scale + 0.5))
        hc = int(math.floor(off_peak * scale + 0.5))
        # Enedis' maximum is of the apparent power over a short window, so a
        # little above the curve's step mean.
        va = int(best * (1.04 + 0.12 * _unit(self._noise, best_t // 60 + 7)))
        when = best_t + int(_unit(self._gap, best_t // 60 + 3) * self.step_at(best_t))
        return wh, hc, va, local_stamp(from_epoch(when))


# The days' summaries and cumulative indexes are pure functions of the PRM
# (a PRM always has the same meter), the direction and the day: cache them.
_summary_cache = {}
_summary_lock = threading.Lock()
_index_cache = {}
_index_lock = threading.Lock()
INDEX_ANCHOR = date(2024, 1, 1)


def _side(direction):
    """INJECTION, or SOUTIRAGE for consumption whatever it is called."""
    return "INJECTION" if direction == "INJECTION" else "SOUTIRAGE"


def day_summary(meter, direction, day):
    direction = _side(direction)
    key = (meter.prm, direction, day)
    with _summary_lock:
        hit = _summary_cache.get(key)
    if hit is None:
        hit = Curve(meter, direction).day_summary(day)
        with _summary_lock:
            if len(_summary_cache) > 200000:
                _summary_cache.clear()
            _summary_cache[key] = hit
    return hit


def index_at(meter, direction, day):
    """Cumulative (total, off-peak) index in Wh at 00:00 Paris on `day`.

    index(INDEX_ANCHOR) is a per-meter constant; every other day adds or
    removes the daily energies in between, so R65(d) = index(d+1) - index(d)
    for any d.
    """
    with _index_lock:
        return _index_at(meter, _side(direction), day)


def _index_at(meter, direction, day):
    known = _index_cache.setdefault((meter.prm, direction), {})
    if not known:
        base = _seed(meter.prm, direction, "index")
        total = (2000000 if direction == "INJECTION" else 20000000) + base % 15000000
        known[INDEX_ANCHOR] = (total, int(total * 0.35))
    if day not in known:
        lo, hi = min(known), max(known)
        if day > hi:
            cur, (tot, hc) = hi, known[hi]
            while cur < day:
                wh, off, _, _ = day_summary(meter, direction, cur)
                tot, hc, cur = tot + wh, hc + off, cur + timedelta(days=1)
                known[cur] = (tot, hc)
        else:
            cur, (tot, hc) = lo, known[lo]
            while cur > day:
                cur -= timedelta(days=1)
                wh, off, _, _ = day_summary(meter, direction, cur)
                tot, hc = tot - wh, hc - off
                known[cur] = (tot, hc)
    return known[day]


def native_curve(meter, direction, since, until):
    """(first step start, step, served values) of the native curve over [since, until).

    For a meter whose step changes, LOADCURVE's one period is the coarser
    step: a finer step's values are averaged into it (as resample() does).
    """
    curve = Curve(meter, direction)
    steps = curve.steps(since, until)
    if meter.step_change is None:
        return steps.start, curve.step, [curve.served(t) for t in steps]
    by_bucket = {}
    for t, _ in curve.raw_steps(from_epoch(steps.start), from_epoch(steps.stop)):
        by_bucket.setdefault(t // curve.step * curve.step, []).append(curve.served(t))
    return steps.start, curve.step, [_mean(by_bucket[t]) for t in steps]


def raw_curve(meter, direction, since, until):
    """[(t, step, served value)] of the meter's own steps over [since, until)."""
    curve = Curve(meter, direction)
    return [(t, step, curve.served(t)) for t, step in curve.raw_steps(since, until)]


def _mean(values):
    present = [v for v in values if v is not None]
    if not present:
        return None
    return int(math.floor(sum(present) / len(present) + 0.5))


def resample(start, step, values, period):
    """Group native values into period buckets; returns (starts, end, values).

    period is a number of seconds (fixed UTC buckets, a multiple of step) or
    None for Europe/Paris days (23, 24 or 25 hours). A bucket's value is the
    rounded mean of its non-null native values, None if it has none.
    """
    end = start + step * len(values)
    if period == step:
        return [start + i * step for i in range(len(values))], end, list(values)
    buckets = []                 # (bucket start, [values])
    if period is None:
        day = paris_date(from_epoch(start))
        b_start = int(paris_midnight(day).timestamp())
        b_end = int(paris_midnight(day + timedelta(days=1)).timestamp())
    else:
        b_start = start // period * period
        b_end = b_start + period
    current = []
    for i, v in enumerate(values):
        t = start + i * step
        while t >= b_end:
            buckets.append((b_start, current))
            current = []
            if period is None:
                day += timedelta(days=1)
                b_start, b_end = b_end, int(paris_midnight(day + timedelta(days=1)).timestamp())
            else:
                b_start, b_end = b_end, b_end + period
        current.append(v)
    buckets.append((b_start, current))
    return [b for b, _ in buckets], b_end, [_mean(vs) for _, vs in buckets]


def period_name(period):
    return "P1D" if period is None else "PT%dS" % period


def curve_buckets(meter, direction, since, until, period="native"):
    """(period, bucket starts, end, values) of a load curve over [since, until).

    period is "native" (the meter's own step), seconds, or None (Paris days).
    The range is widened to whole steps (and whole buckets).
    """
    start, step, values = native_curve(meter, direction, since, until)
    if period == "native":
        period = step
    starts, end, out = resample(start, step, values, period)
    return period, starts, end, out


def curve_json(meter, direction, since, until, period="native"):
    """The one-PRM JSON of GET /request/{id}/data for a load curve."""
    period, starts, end, values = curve_buckets(meter, direction, since, until, period)
    return {"period": period_name(period), "startsAt": iso(from_epoch(starts[0])),
            "endsAt": iso(from_epoch(end)), "values": values}


def check_period(period, meter):
    """Raise ValueError if `period` (seconds or None) cannot be made from meter's step."""
    if period is None:
        return
    if period < meter.step:
        raise ValueError("period %s is finer than the native step PT%dS of PRM %s"
                         % (period_name(period), meter.step, meter.prm))
    if period % meter.step:
        raise ValueError("period %s is not a multiple of the native step PT%dS of PRM %s"
                         % (period_name(period), meter.step, meter.prm))


# ---------------------------------------------------------------------------
# Raw Enedis payloads (what a dataUrl serves)
# ---------------------------------------------------------------------------


def enedis_header(flux, request_id):
    return {"siDemandeur": "SGE", "typeDestinataire": "SI", "idDestinataire": "GRD-F001",
            "codeFlux": flux, "idDemande": "M0" + request_id.replace("-", "")[:6].upper(),
            "modePublication": "P", "idCanalContact": "WEB", "format": "JSON"}


def _periode(days):
    first = days[0] if days else None
    end = days[-1] + timedelta(days=1) if days else None
    return {"dateDebut": first.isoformat() if first else None,
            "dateFin": end.isoformat() if end else None}


def _grandeur_metier(direction):
    return "PROD" if direction == "INJECTION" else "CONS"


def payload_r63(req, meters):
    """The load curve as Enedis writes it: a point per step of the meter's own
    step (`p`), stamped at the END of the step in Paris local time without an
    offset (`d`; on 2024-10-27 "02:00:00" and "02:30:00" come twice, told
    apart only by their position), the mean power in W as a string (`v`). A
    gap is a missing point. The range is widened to whole steps, as LOADCURVE's.
    """
    mesures = []
    for m in meters:
        points = []
        start = end = None
        for t, step, v in raw_curve(m, req.direction, req.since, req.until):
            start = t if start is None else start
            end = t + step
            if v is None:
                continue
            points.append({"v": str(v), "d": local_stamp(from_epoch(t + step)),
                           "p": "PT%dM" % (step // 60), "n": "B", "iv": 0, "ec": 0})
        days = paris_days(from_epoch(start), from_epoch(end - 1)) + [paris_date(from_epoch(end - 1))]
        mesures.append({
            "idPrm": m.prm, "etapeMetier": "BRUT", "periode": _periode(days), "modeCalcul": "BRUT",
            "grandeur": [{"grandeurMetier": _grandeur_metier(req.direction), "grandeurPhysique": "PA",
                          "unite": "W", "points": points}]})
    return {"header": enedis_header("R63", req.id), "mesures": mesures}


def payload_r65(req, meters):
    days = paris_days(req.since, req.until)
    mesures = []
    for m in meters:
        points = [{"v": str(day_summary(m, req.direction, d)[0]), "d": d.isoformat()} for d in days]
        mesures.append({
            "idPrm": m.prm, "etapeMetier": "BRUT", "periode": _periode(days),
            "typeValeur": "GLOBALE", "modeCalcul": "DIFF.INDEX", "pas": "P1D",
            "grandeur": [{"grandeurMetier": _grandeur_metier(req.direction), "grandeurPhysique": "EA",
                          "unite": "Wh", "points": points}]})
    return {"header": enedis_header("R65", req.id), "mesures": mesures}


def payload_r66(req, meters):
    days = paris_days(req.since, req.until)
    mesures = []
    for m in meters:
        points = []
        for d in days:
            _, _, va, when = day_summary(m, req.direction, d)
            points.append({"v": str(va), "d": when})
        mesures.append({
            "idPrm": m.prm, "etapeMetier": "BRUT", "periode": _periode(days),
            "modeCalcul": "BRUT", "pas": "P1D",
            "grandeur": [{"grandeurMetier": _grandeur_metier(req.direction), "grandeurPhysique": "PMA",
                          "unite": "VA", "points": points}]})
    return {"header": enedis_header("R66", req.id), "mesures": mesures}


def _classes(direction):
    """(id, label, cadran code) of the supplier calendar's classes; off-peak first."""
    if direction == "INJECTION":
        return (("BASE", "Base", "IDX_EAI_F1"),)
    return (("HC", "Heures Creuses", "IDX_EAS_F1"), ("HP", "Heures Pleines", "IDX_EAS_F2"))


def payload_r64(req, meters):
    """Daily indexes at 00:00 of each day from date(since) to date(until), both included."""
    days = paris_days(req.since, req.until)
    if days:
        days = days + [days[-1] + timedelta(days=1)]
    mesures = []
    for m in meters:
        idx = [index_at(m, req.direction, d) for d in days]
        stamps = [d.isoformat() + " 00:00:00" for d in days]
        classes = []
        for i, (cid, label, cadran) in enumerate(_classes(req.direction)):
            if len(_classes(req.direction)) == 1:
                values = [tot for tot, _ in idx]
            else:
                values = [hc if i == 0 else tot - hc for tot, hc in idx]
            classes.append({"idClasseTemporelle": cid, "libelleClasseTemporelle": label,
                            "codeCadran": cadran,
                            "valeur": [{"d": s, "v": v, "iv": 0} for s, v in zip(stamps, values)]})
        total_code = "IDX_EAI_T" if req.direction == "INJECTION" else "IDX_EAS_T"
        mesures.append({
            "idPrm": m.prm, "periode": _periode(paris_days(req.since, req.until)),
            "contexte": [{
                "etapeMetier": "BRUT", "contexteReleve": "COL", "typeReleve": "AQ",
                "grandeur": [{
                    "grandeurMetier": _grandeur_metier(req.direction), "grandeurPhysique": "EA",
                    "unite": "Wh",
                    "calendrier": [{"idCalendrier": "FC000012", "libelleCalendrier": "Heures Pleines/Creuses",
                                    "libelleGrille": "Grille fournisseur", "classeTemporelle": classes}],
                    "cadranTotalisateur": {"codeCadran": total_code,
                                           "valeur": [{"d": s, "v": tot, "iv": 0}
                                                      for s, (tot, _) in zip(stamps, idx)]}}]}]})
    return {"header": enedis_header("R64", req.id), "mesures": mesures}


def payload_r67(req, meters):
    """Billing quantities per calendar month (cut to the requested days) and class."""
    days = paris_days(req.since, req.until)
    periods = []                  # (first day, day after the last)
    for d in days:
        if not periods or d.month != periods[-1][0].month or d.year != periods[-1][0].year:
            periods.append([d, d])
        periods[-1][1] = d + timedelta(days=1)
    mesures = []
    for m in meters:
        classes = []
        for i, (cid, label, _) in enumerate(_classes(req.direction)):
            quantities = []
            for first, after in periods:
                tot_a, hc_a = index_at(m, req.direction, first)
                tot_b, hc_b = index_at(m, req.direction, after)
                if len(_classes(req.direction)) == 1:
                    q = tot_b - tot_a
                else:
                    q = hc_b - hc_a if i == 0 else (tot_b - hc_b) - (tot_a - hc_a)
                quantities.append({"dbtMesure": first.isoformat(), "finMesure": after.isoformat(),
                                   "quantite": q, "codeNature": "REEL", "libelleNature": "Réel"})
            classes.append({"idClasseTemporelle": cid, "libelleClasseTemporelle": label,
                            "quantite": quantities})
        mesures.append({
            "idPrm": m.prm, "periode": _periode(days),
            "contexte": [{
                "etapeMetier": "BRUT", "idMotifReleve": "CYC", "libelleMotifReleve": "Relève cyclique",
                "grandeur": [{
                    "grandeurMetier": _grandeur_metier(req.direction), "grandeurPhysique": "EA",
                    "unite": "Wh",
                    "calendrier": [{"codeGrille": "FRN", "libelleGrille": "Fournisseur",
                                    "codeCalendrier": "DI000003", "libelleCalendrier": "HP/HC",
                                    "classeTemporelle": classes}]}]}]})
    return {"header": enedis_header("R67", req.id), "mesures": mesures}


def _c68_common(m):
    segment = "C4" if m.kva > 36 or m.meter_type == "PME-PMI" else "C5"
    general = {
        "etatContractuel": {"code": "SERVC", "libelle": "En service"},
        "adresseInstallation": {"numeroEtNomVoie": m.street, "codePostal": m.postal_code,
                                "commune": {"libelle": m.city}},
        "segment": {"code": segment},
        "niveauOuvertureServices": "2" if m.meter_type == "LINKY" else "1",
    }
    supply = {"alimentationPrincipale": {
        "domaineTension": {"code": "BTINF" if segment == "C5" else "BTSUP"},
        "puissanceRaccordementSoutirage": {"valeur": str(max(12, m.kva)), "unite": "kVA"}}}
    if m.injection:
        supply["alimentationPrincipale"]["puissanceRaccordementInjection"] = {"valeur": "6", "unite": "kVA"}
    metering = {"dispositifComptage": {
        "typeComptage": {"code": m.meter_type},
        "relais": {"plageHeuresCreuses": "HC (22H30-6H30)"}}}
    tariff = {"formuleTarifaireAcheminement": {"code": "BTINFCUST" if segment == "C5" else "BTSUPCU4"},
              "puissanceSouscriteMax": {"valeur": str(m.kva), "unite": "kVA"}}
    return general, supply, metering, tariff


def payload_c68(req, meters):
    """The synchronous C68 `point` object; an array of them for several PRMs."""
    points = []
    for m in meters:
        general, supply, metering, tariff = _c68_common(m)
        points.append({"point": {"id": m.prm, "donneesGenerales": general,
                                 "situationAlimentation": supply, "situationComptage": metering,
                                 "situationContractuelle": {"structureTarifaire": tariff}}})
    return points[0] if len(points) == 1 else points


def payload_c68_async(req, meters):
    """C68_ASYNC: a top-level array, one object per PRM."""
    out = []
    for m in meters:
        general, supply, metering, tariff = _c68_common(m)
        holder = ({"personneMorale": {"denominationSociale": m.holder}} if m.category == "PRO"
                  else {"personnePhysique": {"nom": m.holder}})
        out.append({
            "idPrm": m.prm, "donneesGenerales": general, "situationAlimentation": supply,
            "situationComptage": metering,
            "situationsContractuelles": [{"dateDebut": "2021-06-01", "clientFinal": holder,
                                          "structureTarifaire": tariff,
                                          "siContractuel": {"code": "SGEL"}}],
            "syntheseContractuelle": {"niveauOuvertureServices": general["niveauOuvertureServices"],
                                      "injection": m.injection, "soutirage": True,
                                      "direction": req.direction}})
    return out


PAYLOADS = {"R63": payload_r63, "R64": payload_r64, "R65": payload_r65, "R66": payload_r66, "R67": payload_r67,
            "C68": payload_c68, "C68_ASYNC": payload_c68_async}


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer: status, message, and the issues list of the body."""

    def __init__(self, status, message, issues=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.issues = issues or []
        self.headers = headers or {}


def issue(tag, path, message):
    return {"_tag": tag, "path": list(path), "message": message}


def bad_request(message, tag="Type", path=()):
    return ApiError(400, message, [issue(tag, path, message)])


PRM_RE = re.compile(r"[0-9]{14}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_prm(value):
    return isinstance(value, str) and PRM_RE.fullmatch(value) is not None


def is_uuid(value):
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


def check_keys(obj, path, required=(), optional=()):
    """Refuse a non-object, missing required keys and unknown keys."""
    if not isinstance(obj, dict):
        raise bad_request("%s must be an object" % _where(path), path=path)
    for k in required:
        if k not in obj:
            raise bad_request("%s is missing" % _where(list(path) + [k]), "Missing", list(path) + [k])
    for k in obj:
        if k not in required and k not in optional:
            raise bad_request("%s is not allowed" % _where(list(path) + [k]), "Unexpected",
                              list(path) + [k])


def check_string(value, path, nonempty=True):
    if not isinstance(value, str) or (nonempty and not value.strip()):
        raise bad_request("%s must be a non-empty string" % _where(path), path=path)


def check_enum(value, allowed, path):
    if value not in allowed:
        raise bad_request("%s must be one of %s" % (_where(path), ", ".join(allowed)), path=path)


def check_array(value, path, nonempty=True):
    if not isinstance(value, list) or (nonempty and not value):
        raise bad_request("%s must be a non-empty array" % _where(path), path=path)


def _where(path):
    return ".".join(str(p) for p in path) if path else "the body"


def validate_signer(signer):
    check_keys(signer, ["signer"], ("firstName", "lastName"), ("genre", "email", "phone"))
    for k in ("firstName", "lastName"):
        check_string(signer[k], ["signer", k])
    if "genre" in signer:
        check_enum(signer["genre"], ("M", "F"), ["signer", "genre"])
    if "email" in signer:
        check_string(signer["email"], ["signer", "email"])
        if "@" not in signer["email"]:
            raise bad_request("signer.email is not an e-mail address", "Refinement", ["signer", "email"])
    if "phone" in signer:
        check_string(signer["phone"], ["signer", "phone"])


def validate_purposes(purposes, path):
    check_array(purposes, path)
    for i, p in enumerate(purposes):
        if isinstance(p, dict):
            check_keys(p, path + [i], ("id",))
            p = p["id"]
        check_enum(p, PURPOSES, path + [i])


def validate_scopes(scopes, path):
    check_array(scopes, path)
    for i, s in enumerate(scopes):
        p = path + [i]
        if not isinstance(s, dict) or "id" not in s:
            raise bad_request("%s must be a scope object with an id" % _where(p), path=p)
        if s["id"] == "DETAILS_CONTRACTUELS":
            check_keys(s, p, ("service", "id"))
            check_enum(s["service"], ("ENEDIS_RAW_API",), p + ["service"])
            continue
        if s["id"] == "CONSUMPTION_DATA":
            check_keys(s, p, ("service", "id", "args"))
            check_enum(s["service"], ("ENEDIS_RAW_API",), p + ["service"])
            types, directions = ("CDC", "IDX", "ENERGIE", "PMAX"), ("SOUTIRAGE", "INJECTION")
        elif s["id"] == "ELECTRICITY_TIMESERIES":
            check_keys(s, p, ("id", "args"), ("service",))
            types, directions = ("LOADCURVE",), ("CONSUMPTION", "INJECTION")
        else:
            raise bad_request("%s must be DETAILS_CONTRACTUELS, CONSUMPTION_DATA or "
                              "ELECTRICITY_TIMESERIES" % _where(p + ["id"]), path=p + ["id"])
        check_keys(s["args"], p + ["args"], ("types", "directions"))
        for key, allowed in (("types", types), ("directions", directions)):
            check_array(s["args"][key], p + ["args", key])
            for j, v in enumerate(s["args"][key]):
                check_enum(v, allowed, p + ["args", key, j])


def validate_contract_object(c, path):
    """An electricityContracts entry given as {prm, heldBy, address}."""
    check_keys(c, path, ("prm", "heldBy", "address"))
    if not is_prm(c["prm"]):
        raise bad_request("%s must be 14 digits" % _where(path + ["prm"]), "Refinement", path + ["prm"])
    held = c["heldBy"]
    hp = path + ["heldBy"]
    if isinstance(held, dict) and "name" in held:
        check_keys(held, hp, ("name",), ("siret", "siren", "otherNames"))
        check_string(held["name"], hp + ["name"])
        for k in ("siret", "siren"):
            if k in held:
                check_string(held[k], hp + [k])
        if "otherNames" in held:
            check_array(held["otherNames"], hp + ["otherNames"], nonempty=False)
            if len(held["otherNames"]) > 2:
                raise bad_request("heldBy.otherNames has at most 2 names", "Refinement", hp + ["otherNames"])
    else:
        check_keys(held, hp, ("firstName", "lastName"), ("genre",))
        check_string(held["firstName"], hp + ["firstName"])
        check_string(held["lastName"], hp + ["lastName"])
        if "genre" in held:
            check_enum(held["genre"], ("M", "F"), hp + ["genre"])
    ap = path + ["address"]
    check_keys(c["address"], ap, ("street", "postalCode", "city"), ("country",))
    for k in ("street", "city"):
        check_string(c["address"][k], ap + [k])
    if not (isinstance(c["address"]["postalCode"], str) and re.fullmatch(r"\d{5}", c["address"]["postalCode"])):
        raise bad_request("address.postalCode must be 5 digits", "Refinement", ap + ["postalCode"])
    if "country" in c["address"]:
        check_string(c["address"]["country"], ap + ["country"])


def query_params(query, allowed):
    """Decode a query string (UTF-8, + as space); refuse unknown parameters."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise bad_request("the query string is not valid UTF-8") from None
    params = {}
    for k, v in pairs:
        if k not in allowed:
            raise bad_request("query parameter %s is not allowed" % k, "Unexpected", [k])
        params[k] = v
    return params


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------


@dataclass
class Ask:
    id: str
    created_ms: int
    create_args: dict
    contracts: list            # contract_json() of each PRM
    address_checks: dict       # prm -> SUCCESS | FAILURE
    service: str
    test_env: bool
    expires: tuple | None      # consent duration (n, unit)
    status: str = "PENDING_USER_ACTION"
    accepted_ms: int | None = None
    consent_ids: dict = field(default_factory=dict)
    deleted: bool = False

    @property
    def prms(self):
        return [c["prm"] for c in self.contracts]


@dataclass
class Request:
    id: str
    order_id: str
    type: str
    prms: list
    direction: str | None
    since: datetime | None
    until: datetime | None
    retry_activation: bool
    pending_at: int            # times are epoch milliseconds
    done_at: int
    status: str = "NOT_STARTED"
    ordered_at: int | None = None
    completed_at: int | None = None
    error: str | None = None
    next_at: int = 0

    @property
    def kind(self):
        return REQUEST_KINDS[self.type]


@dataclass
class Order:
    id: str
    created_ms: int
    request_ids: list


@dataclass
class Fault:
    seq: int
    method: str
    path: re.Pattern
    server: str
    times: int
    status: int | None
    retry_after: float | None
    delay_ms: int
    body: str | None
    truncate: bool
    malformed: bool
    reset: bool = False
    trickle_ms: int = 0
    invalid_utf8: bool = False
    nesting: int = 0
    oversize: int = 0
    redirect: str | None = None

    def to_json(self):
        return {"seq": self.seq, "method": self.method, "path": self.path.pattern,
                "server": self.server, "times": self.times, "status": self.status,
                "retry_after": self.retry_after, "delay_ms": self.delay_ms, "body": self.body,
                "truncate": self.truncate, "malformed": self.malformed, "reset": self.reset,
                "trickle_ms": self.trickle_ms, "invalid_utf8": self.invalid_utf8,
                "nesting": self.nesting, "oversize": self.oversize, "redirect": self.redirect}

    def replaces_answer(self):
        """True if the fault answers by itself instead of the real handler."""
        return (self.status is not None or self.body is not None or self.nesting > 0
                or self.oversize > 0 or self.redirect is not None)


@dataclass
class Config:
    token: str = "sim-token"
    latency_ms: int = 0
    pending_ms: int = 150
    complete_ms: int = 600
    long_complete_ms: int = 2000
    activation_ms: int = 3000
    auto_accept_ms: int | None = None
    webhook_url: str | None = None
    webhook_retry_ms: int = 500
    max_page_size: int | None = None
    omit_prms: bool = False
    quiet: bool = False


class Simulator:
    """Everything the servers share, behind one lock.

    Time drives the Asks (auto-accept) and requests (status changes): advance()
    applies every transition due by now, in time order, so the result does not
    depend on when, or how often, anyone looks.
    """

    def __init__(self, config):
        self.config = config
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.api_base = "http://127.0.0.1"
        self.data_base = "http://127.0.0.1"
        self._last_ms = 0
        self.max_page_size = config.max_page_size
        self.omit_prms = config.omit_prms
        self.latency_ms = config.latency_ms
        self._clear_everything()
        self._clear_logs()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- resets ------------------------------------------------------------

    def _clear_everything(self):
        self.asks = {}
        self.consents = {}        # consent id -> (ask id, prm)
        self.orders = {}
        self.requests = {}
        self._schedule = []       # heap of (epoch ms, seq, kind, id)
        self._seq = 0
        self.activations = {}     # prm -> epoch ms the activation started
        self.adhoc = {}           # prm -> Meter found by search or given in an Ask
        self.faults = []
        self._payload_cache = {}

    def _clear_logs(self):
        self.log = []
        self._log_seq = 0
        self.webhooks = []
        self._webhook_seq = 0
        self.pending_events = []

    def reset(self, everything):
        with self.lock:
            self.faults = []
            self.max_page_size = self.config.max_page_size
            self.omit_prms = self.config.omit_prms
            self.latency_ms = self.config.latency_ms
            self._clear_logs()
            if everything:
                self._clear_everything()

    # -- clock -------------------------------------------------------------

    def _now_ms(self):
        """A creation time in ms, strictly increasing across Asks and Orders."""
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def _push(self, at, kind, ident):
        self._seq += 1
        heapq.heappush(self._schedule, (at, self._seq, kind, ident))

    # -- meters ------------------------------------------------------------

    def meter(self, prm):
        return CATALOGUE_BY_PRM.get(prm) or self.adhoc.get(prm) or generic_meter(prm)

    # -- request log -------------------------------------------------------

    def log_request(self, server, method, path, query, auth, test_env, body, conn=None,
                    user_agent=None):
        with self.lock:
            self._log_seq += 1
            entry = {"seq": self._log_seq, "server": server, "method": method, "path": path,
                     "query": query, "auth": auth, "test_env": test_env, "status": None,
                     "body": body, "conn": conn, "user_agent": user_agent,
                     "at": time.time()}
            self.log.append(entry)
            return entry

    def finish_log(self, entry, status):
        with self.lock:
            entry["status"] = status

    def log_snapshot(self):
        with self.lock:
            return [dict(e) for e in self.log]

    # -- faults ------------------------------------------------------------

    def add_fault(self, spec):
        check_keys(spec, [], (), ("method", "path", "times", "status", "retry_after", "delay_ms",
                                  "body", "truncate", "malformed", "server", "reset", "trickle_ms",
                                  "invalid_utf8", "nesting", "oversize", "redirect"))
        method = spec.get("method", "*")
        check_enum(method, ("GET", "POST", "DELETE", "PUT", "PATCH", "*"), ["method"])
        try:
            path = re.compile(spec.get("path", ""))
        except (re.error, TypeError) as e:
            raise bad_request("path is not a regular expression: %s" % e, path=["path"]) from None
        server = spec.get("server", "api")
        check_enum(server, ("api", "data", "page"), ["server"])
        times = spec.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or (times < 1 and times != -1):
            raise bad_request("times must be a positive integer or -1", path=["times"])
        status = spec.get("status")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise bad_request("status must be an HTTP status code", path=["status"])
        retry_after = spec.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, (int, float)) or retry_after < 0):
            raise bad_request("retry_after must be a number of seconds", path=["retry_after"])
        delay = spec.get("delay_ms", 0)
        if not isinstance(delay, int) or delay < 0:
            raise bad_request("delay_ms must be a non-negative integer", path=["delay_ms"])
        body = spec.get("body")
        if body is not None and not isinstance(body, str):
            raise bad_request("body must be a string (the raw body)", path=["body"])
        flags = {}
        for k in ("truncate", "malformed", "reset", "invalid_utf8"):
            flags[k] = spec.get(k, False)
            if not isinstance(flags[k], bool):
                raise bad_request("%s must be a boolean" % k, path=[k])
        sizes = {}
        for k, most in (("trickle_ms", 60000), ("nesting", 10000000), ("oversize", 1 << 30)):
            sizes[k] = spec.get(k, 0)
            if not isinstance(sizes[k], int) or isinstance(sizes[k], bool) or not 0 <= sizes[k] <= most:
                raise bad_request("%s must be an integer from 0 to %d" % (k, most), path=[k])
        redirect = spec.get("redirect")
        if redirect is not None and (not isinstance(redirect, str)
                                     or not redirect.startswith(("http://", "https://"))):
            raise bad_request("redirect must be an http(s) URL", path=["redirect"])
        with self.lock:
            self._seq += 1
            f = Fault(self._seq, method, path, server, times, status, retry_after, delay, body,
                      flags["truncate"], flags["malformed"], flags["reset"], sizes["trickle_ms"],
                      flags["invalid_utf8"], sizes["nesting"], sizes["oversize"], redirect)
            self.faults.append(f)
            return f.to_json()

    def take_fault(self, server, method, path):
        """The first fault rule matching this request, consumed once; or None."""
        with self.lock:
            for f in self.faults:
                if f.server == server and f.method in ("*", method) and f.path.search(path):
                    if f.times > 0:
                        f.times -= 1
                        if f.times == 0:
                            self.faults.remove(f)
                    return f
        return None

    def clear_faults(self):
        with self.lock:
            self.faults = []

    # -- time-driven transitions --------------------------------------------

    def advance(self):
        """Apply every transition due by now, in time order."""
        with self.lock:
            now = int(time.time() * 1000)
            while self._schedule and self._schedule[0][0] <= now:
                at, _, kind, ident = heapq.heappop(self._schedule)
                if kind == "ask":
                    ask = self.asks.get(ident)
                    if ask and not ask.deleted and ask.status == "PENDING_USER_ACTION":
                        self._accept(ask, at)
                else:
                    req = self.requests.get(ident)
                    if req and req.next_at == at:
                        self._step_request(req, at)

    def _step_request(self, req, at):
        if req.status == "NOT_STARTED":
            req.status, req.ordered_at, req.next_at = "PENDING", at, req.done_at
            self._push(req.next_at, "request", req.id)
            return
        failure = None
        for prm in req.prms:
            failure = failure or self._failure(self.meter(prm), req)
        if failure is None and req.kind.curve:
            for prm in req.prms:
                if self.meter(prm).behaviour != "activation":
                    continue
                started = self.activations.setdefault(prm, at)   # the first failure starts it
                ready = started + self.config.activation_ms
                if at < ready:
                    if req.retry_activation:
                        # Switchgrid keeps the request and retries once Enedis activated the curve.
                        req.error, req.next_at = MSG_NO_LOADCURVE_SERVICE, ready
                        self._push(ready, "request", req.id)
                        return
                    failure = MSG_NO_LOADCURVE_SERVICE
                    break
        req.completed_at = at
        if failure:
            req.status, req.error = "FAILED", failure
        else:
            req.status, req.error = "SUCCESS", None
        self._event("order.request_success" if req.status == "SUCCESS" else "order.request_failed",
                    at, orderId=req.order_id, requestType=req.type, requestId=req.id)

    @staticmethod
    def _failure(meter, req):
        """The Enedis error this meter gives for this request, if any."""
        kind = req.kind
        if meter.behaviour == "unknown_point":
            return MSG_UNKNOWN_POINT
        if kind.measures and meter.behaviour == "no_measure":
            return MSG_NO_MEASURE
        if kind.curve and meter.behaviour == "no_curve":
            return MSG_NO_CURVE_METER
        if req.direction == "INJECTION" and not meter.injection:
            return MSG_NO_INJECTION
        return None

    # -- webhooks ------------------------------------------------------------

    def _event(self, tag, at, **ids):
        if not self.config.webhook_url:
            return
        event = {"_tag": tag, "createdAt": iso_ms(at), "organizationId": ORGANIZATION_ID}
        event.update(ids)
        self._webhook_seq += 1
        delivery = {"seq": self._webhook_seq, "event": event, "attempts": [], "delivered": None}
        self.webhooks.append(delivery)
        self.pending_events.append(delivery)

    def take_pending_events(self):
        with self.lock:
            events, self.pending_events = self.pending_events, []
            return events

    def deliver(self, delivery):
        """POST one webhook, up to 3 attempts in all, --webhook-retry-ms apart."""
        body = json.dumps({"event": delivery["event"]}).encode()
        for attempt in range(1, 4):
            record = {"attempt": attempt, "at": iso(datetime.now(UTC)), "status": None, "error": None}
            try:
                req = urllib.request.Request(self.config.webhook_url, data=body, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "switchgrid-sim-webhooks"})
                with self._opener.open(req, timeout=5) as res:
                    res.read()
                    record["status"] = res.status
            except urllib.error.HTTPError as e:
                record["status"] = e.code
                e.close()
            except (OSError, ValueError) as e:
                record["error"] = str(e) or e.__class__.__name__
            ok = record["status"] is not None and 200 <= record["status"] < 300
            with self.lock:
                delivery["attempts"].append(record)
                if ok or attempt == 3:
                    delivery["delivered"] = ok
            if ok or attempt == 3 or self.stopping.wait(self.config.webhook_retry_ms / 1000.0):
                return

    def webhooks_snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.webhooks))

    # -- search --------------------------------------------------------------

    def search(self, query):
        p = query_params(query, ("name", "address", "prm"))
        name = p.get("name", "")
        if len(name.strip()) < 3:
            raise bad_request("name must be at least 3 characters long", "Refinement", ["name"])
        address = p.get("address", "").strip()
        prm = p.get("prm", "").strip()
        if not address and not prm:
            raise bad_request("give an address or a prm (or both)", "Missing", ["address"])
        if prm and not is_prm(prm):
            raise bad_request("prm must be exactly 14 digits", "Refinement", ["prm"])
        postal = None
        if address:
            found = re.search(r"(?<!\d)(\d{5})(?!\d)", address)
            if not found or not re.search(r"[^\W\d_]{2,}", address[:found.start()]):
                raise bad_request("address must contain a street and a 5-digit postal code",
                                  "Refinement", ["address"])
            postal = found.group(1)
        results = [m for m in CATALOGUE
                   if name_matches(name, m.holder) and (m.prm == prm or m.postal_code == postal)]
        if prm and prm not in CATALOGUE_BY_PRM:
            with self.lock:
                self.adhoc[prm] = self._adhoc_meter(prm, name.strip(), address, postal)
                results.append(self.adhoc[prm])
        return {"results": [contract_json(m) for m in results]}

    @staticmethod
    def _adhoc_meter(prm, holder, address, postal):
        if postal:
            street, _, city = address.partition(postal)
            return generic_meter(prm, holder, " ".join(street.split()).strip(" ,").upper(),
                                 postal, " ".join(city.split()).strip(" ,").upper())
        return generic_meter(prm, holder)

    # -- asks ----------------------------------------------------------------

    def create_ask(self, body, test_env):
        check_keys(body, [], ("electricityContracts", "signer"),
                   ("purposes", "consentDuration", "scopes", "consentCollectionMedium",
                    "scopesAndPurpose", "options"))
        contracts = body["electricityContracts"]
        check_array(contracts, ["electricityContracts"])
        validate_signer(body["signer"])
        if "purposes" in body:
            validate_purposes(body["purposes"], ["purposes"])
        if "scopes" in body:
            validate_scopes(body["scopes"], ["scopes"])
        if "scopesAndPurpose" in body:
            check_array(body["scopesAndPurpose"], ["scopesAndPurpose"])
            for i, sp in enumerate(body["scopesAndPurpose"]):
                check_keys(sp, ["scopesAndPurpose", i], ("scopes", "purposes"))
                validate_scopes(sp["scopes"], ["scopesAndPurpose", i, "scopes"])
                validate_purposes(sp["purposes"], ["scopesAndPurpose", i, "purposes"])
        duration = None
        if "consentDuration" in body:
            if body["consentDuration"] not in CONSENT_DURATIONS:
                raise bad_request("consentDuration must be one of '1 day'..'6 days', '1 week'.."
                                  "'4 weeks', '1 month'..'6 months', '1 year'..'20 years'",
                                  path=["consentDuration"])
            duration = CONSENT_DURATIONS[body["consentDuration"]]
        service = "WEB_HOSTED"
        if "consentCollectionMedium" in body:
            check_keys(body["consentCollectionMedium"], ["consentCollectionMedium"], ("service",))
            service = body["consentCollectionMedium"]["service"]
            check_enum(service, ("WEB_HOSTED", "DOCUSEAL"), ["consentCollectionMedium", "service"])
        skip_check = False
        if "options" in body:
            check_keys(body["options"], ["options"], (), ("skipAddressCheck",))
            skip_check = body["options"].get("skipAddressCheck", False)
            if not isinstance(skip_check, bool):
                raise bad_request("options.skipAddressCheck must be a boolean",
                                  path=["options", "skipAddressCheck"])

        with self.lock:
            by_id = {contract_id(m.prm): m for m in list(CATALOGUE) + list(self.adhoc.values())}
            meters, checks = [], {}
            for i, c in enumerate(contracts):
                path = ["electricityContracts", i]
                if isinstance(c, str):
                    if not is_uuid(c):
                        raise bad_request("%s must be a contract uuid from GET /search_contract"
                                          % _where(path), "Refinement", path)
                    meter = by_id.get(c.lower())
                    if meter is None:
                        raise bad_request("unknown electricity contract %s" % c, "Refinement", path)
                    check = "SUCCESS"
                else:
                    validate_contract_object(c, path)
                    meter, check = self._meter_for_object(c)
                if meter.prm in checks:
                    raise bad_request("PRM %s appears twice" % meter.prm, "Refinement", path)
                meters.append(meter)
                checks[meter.prm] = "SUCCESS" if skip_check else check
            ask = Ask(str(uuid.uuid4()), self._now_ms(), body, [contract_json(m) for m in meters],
                      checks, service, test_env, duration)
            if "FAILURE" in checks.values():
                ask.status = "ADDRESS_CHECK_FAILED"
            self.asks[ask.id] = ask
            if self.config.auto_accept_ms is not None and ask.status == "PENDING_USER_ACTION":
                self._push(ask.created_ms + self.config.auto_accept_ms, "ask", ask.id)
            return self.ask_json(ask)

    def _meter_for_object(self, c):
        """The meter of a {prm, heldBy, address} contract, and its address check.

        A catalogue PRM passes the check if the postal code and the holder's
        (last) name match the catalogue; any other PRM passes and is remembered.
        """
        held, addr = c["heldBy"], c["address"]
        name = held.get("name") or "%s %s" % (held["lastName"].upper(), held["firstName"])
        known = CATALOGUE_BY_PRM.get(c["prm"])
        if known:
            ok = (addr["postalCode"] == known.postal_code
                  and name_matches(held.get("name") or held["lastName"], known.holder))
            return known, "SUCCESS" if ok else "FAILURE"
        meter = self.adhoc.get(c["prm"]) or generic_meter(
            c["prm"], name, addr["street"].upper(), addr["postalCode"], addr["city"].upper())
        self.adhoc[c["prm"]] = meter
        return meter, "SUCCESS"

    def ask_json(self, ask):
        collection = None
        if ask.status != "ADDRESS_CHECK_FAILED":
            collection = {"service": ask.service, "userUrl": "%s/c/%s" % (self.api_base, ask.id)}
        return {
            "id": ask.id,
            "createdAt": iso_ms(ask.created_ms),
            "status": ask.status,
            "acceptedAt": iso_ms(ask.accepted_ms) if ask.accepted_ms else None,
            "consentCollectionDetails": collection,
            "createArgs": ask.create_args,
            "addressCheckResults": {prm: {"status": s} for prm, s in ask.address_checks.items()},
            "consentIds": dict(ask.consent_ids),
            "contracts": ask.contracts,
        }

    def _live_ask(self, ask_id):
        self.advance()
        ask = self.asks.get(ask_id.lower()) if is_uuid(ask_id) else None
        if ask is None or ask.deleted:
            raise ApiError(404, "Ask %s not found" % ask_id)
        return ask

    def get_ask(self, ask_id):
        if not is_uuid(ask_id):
            raise bad_request("askId must be a uuid", "Refinement", ["askId"])
        with self.lock:
            return self.ask_json(self._live_ask(ask_id))

    def delete_ask(self, ask_id):
        if not is_uuid(ask_id):
            raise bad_request("askId must be a uuid", "Refinement", ["askId"])
        with self.lock:
            ask = self._live_ask(ask_id)
            ask.deleted = True
            return {"id": ask.id, "deleted": True}

    def accept_ask(self, ask_id):
        """Sign an Ask (the page, or the control API). Returns the Ask JSON."""
        with self.lock:
            ask = self._live_ask(ask_id)
            if ask.status == "ADDRESS_CHECK_FAILED":
                raise ApiError(409, "Ask %s failed its address check and cannot be signed" % ask.id)
            if ask.status != "ACCEPTED":
                self._accept(ask, self._now_ms())
            return self.ask_json(ask)

    def _accept(self, ask, at_ms):
        ask.status, ask.accepted_ms = "ACCEPTED", at_ms
        for prm in ask.prms:
            consent = str(uuid.uuid4())
            ask.consent_ids[prm] = consent
            self.consents[consent] = (ask.id, prm)
        self._event("ask.accepted", at_ms, askId=ask.id)

    def list_asks(self, query):
        p = query_params(query, ("skip", "limit", "orderBy", "status", "prm"))

        def integer(name, default, low, high):
            raw = p.get(name, str(default))
            if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
                raise bad_request("%s must be an integer from %d to %d" % (name, low, high),
                                  "Refinement", [name])
            return int(raw)

        skip = integer("skip", 0, 0, 10 ** 9)
        limit = integer("limit", 10, 0, 100)
        order_by = p.get("orderBy", "createdAt:asc")
        check_enum(order_by, ("createdAt:asc", "createdAt:desc"), ["orderBy"])

        def filters(name, valid):
            include, exclude = set(), set()
            for raw in p.get(name, "").split(","):
                v = raw.strip()
                if not v:
                    continue
                target = exclude if v.startswith("!") else include
                v = v.lstrip("!")
                if not valid(v):
                    raise bad_request("%s filter has an invalid value %r" % (name, v), "Refinement", [name])
                target.add(v)
            return include, exclude

        st_in, st_out = filters("status", lambda v: v in ASK_STATUSES)
        prm_in, prm_out = filters("prm", is_prm)
        with self.lock:
            self.advance()
            items = [a for a in self.asks.values() if not a.deleted
                     and (not st_in or a.status in st_in) and a.status not in st_out
                     and (not prm_in or prm_in.intersection(a.prms))
                     and not prm_out.intersection(a.prms)]
            items.sort(key=lambda a: a.created_ms, reverse=order_by.endswith("desc"))
            # a server may serve fewer than asked for (--max-page-size, /_sim/settings)
            if self.max_page_size is not None:
                limit = min(limit, self.max_page_size)
            page = items[skip:skip + limit]
            return {"skip": skip, "limit": limit, "totalItemsCount": len(items),
                    "returnedItemsCount": len(page), "items": [self.ask_json(a) for a in page]}

    def _consent_valid(self, consent_id, now):
        ask_id, prm = self.consents[consent_id]
        ask = self.asks.get(ask_id)
        if ask is None or ask.deleted or ask.status != "ACCEPTED":
            return False
        if ask.expires:
            until = add_duration(datetime.fromtimestamp(ask.accepted_ms / 1000.0, UTC), *ask.expires)
            if now >= until:
                return False
        return True

    # -- orders --------------------------------------------------------------

    def create_order(self, body):
        """POST /order: check the body, then that consents cover every PRM."""
        check_keys(body, [], ("requests",), ("consentId",))
        consent = body.get("consentId")
        if consent is not None and not is_uuid(consent):
            raise bad_request("consentId must be a uuid", "Refinement", ["consentId"])
        check_array(body["requests"], ["requests"])
        now = datetime.now(UTC)
        specs = [self._check_request(r, ["requests", i], consent is not None, now)
                 for i, r in enumerate(body["requests"])]
        with self.lock:
            self.advance()
            if consent is not None:
                consent = consent.lower()
                if consent not in self.consents or not self._consent_valid(consent, now):
                    raise ApiError(400, "no valid consent with id %s" % consent,
                                   [issue("Forbidden", ["consentId"], "no valid consent with this id")])
            for i, spec in enumerate(specs):
                if spec["prms"] is None:
                    spec["prms"] = [self.consents[consent][1]]
                for j, prm in enumerate(spec["prms"]):
                    if not any(self._consent_valid(c, now) for c, (_, p) in self.consents.items() if p == prm):
                        raise ApiError(400, "no valid consent covers PRM %s: an Ask for it must be "
                                            "ACCEPTED (and not deleted)" % prm,
                                       [issue("Forbidden", ["requests", i, "prms", j],
                                              "no valid consent for this PRM")])
            t0 = self._now_ms()
            order = Order(str(uuid.uuid4()), t0, [])
            for spec in specs:
                kind = REQUEST_KINDS[spec["type"]]
                long = kind.always_long or (kind.long_if_over_7_days and
                                            spec["until"] - spec["since"] > timedelta(days=7, hours=1))
                pending_at = t0 + self.config.pending_ms
                done_at = max(pending_at, t0 + (self.config.long_complete_ms if long
                                                else self.config.complete_ms))
                req = Request(str(uuid.uuid4()), order.id, spec["type"], spec["prms"],
                              spec["direction"], spec["since"], spec["until"], spec["retry"],
                              pending_at, done_at, next_at=pending_at)
                self.requests[req.id] = req
                order.request_ids.append(req.id)
                self._push(req.next_at, "request", req.id)
            self.orders[order.id] = order
            return self.order_json(order)

    @staticmethod
    def _check_request(r, path, has_consent, now):
        """One entry of `requests`, checked; prms is None when the consent implies it."""
        if not isinstance(r, dict) or "type" not in r:
            raise bad_request("%s must be an object with a type" % _where(path), "Missing", path + ["type"])
        rtype = r["type"]
        check_enum(rtype, tuple(REQUEST_KINDS), path + ["type"])
        kind = REQUEST_KINDS[rtype]
        optional = ["prms"]
        if kind.directions:
            optional.append("direction")
        if kind.dated:
            optional += ["since", "until"]
        if kind.curve:
            optional.append(RETRY_FLAG)
        check_keys(r, path, ("type",), optional)
        prms = None
        if "prms" in r:
            check_array(r["prms"], path + ["prms"])
            for j, prm in enumerate(r["prms"]):
                if not is_prm(prm):
                    raise bad_request("%s must be 14 digits" % _where(path + ["prms", j]), "Refinement",
                                      path + ["prms", j])
            if len(set(r["prms"])) != len(r["prms"]):
                raise bad_request("%s lists a PRM twice" % _where(path + ["prms"]), "Refinement",
                                  path + ["prms"])
            prms = list(r["prms"])
        elif not has_consent:
            raise bad_request("%s is missing (or give a consentId)" % _where(path + ["prms"]), "Missing",
                              path + ["prms"])
        direction = r.get("direction", kind.default_direction)
        if "direction" in r:
            check_enum(direction, kind.directions, path + ["direction"])
        since = until = None
        if kind.dated:
            instants = {}
            for key in ("since", "until"):
                if key in r:
                    try:
                        instants[key] = parse_instant(r[key])
                    except ValueError as e:
                        raise ApiError(400, "%s: %s" % (_where(path + [key]), e),
                                       [issue("Type", path + [key], str(e))]) from None
            # Defaults: until = today 00:00 in Paris, since = 7 Paris days earlier.
            until = instants.get("until") or paris_midnight(paris_date(now))
            since = instants.get("since") or paris_midnight(paris_date(until) - timedelta(days=7))
            if since >= until:
                raise bad_request("since must be before until", "Refinement", path + ["since"])
        retry = r.get(RETRY_FLAG, False)
        if not isinstance(retry, bool):
            raise bad_request("%s must be a boolean" % RETRY_FLAG, path=path + [RETRY_FLAG])
        return {"type": rtype, "prms": prms, "direction": direction, "since": since,
                "until": until, "retry": retry}

    def request_json(self, req):
        def at(ms):
            return iso_ms(ms) if ms is not None else None
        data_url = None
        if req.status == "SUCCESS" and req.kind.flux:
            data_url = "%s/files/%s.json" % (self.data_base, req.id)
        doc = {"id": req.id, "type": req.type, "prms": list(req.prms), "direction": req.direction,
               "since": iso(req.since) if req.since else None,
               "until": iso(req.until) if req.until else None,
               "status": req.status, "orderedAt": at(req.ordered_at),
               "completedAt": at(req.completed_at), "dataUrl": data_url, "errorMessage": req.error}
        if self.omit_prms:
            # the spec does not promise them (--omit-prms, /_sim/settings)
            del doc["prms"]
        return doc

    def order_json(self, order):
        reqs = [self.requests[r] for r in order.request_ids]
        statuses = {r.status for r in reqs}
        if statuses <= {"SUCCESS", "FAILED"}:
            status = "SOME_REQUESTS_FAILED" if "FAILED" in statuses else "SUCCESS"
        else:
            status = "PENDING_REQUESTS"
        return {"id": order.id, "createdAt": iso_ms(order.created_ms), "status": status,
                "requests": [self.request_json(r) for r in reqs]}

    def get_order(self, order_id):
        if not is_uuid(order_id):
            raise bad_request("orderId must be a uuid", "Refinement", ["orderId"])
        with self.lock:
            self.advance()
            order = self.orders.get(order_id.lower())
            if order is None:
                raise ApiError(404, "Order %s not found" % order_id)
            return self.order_json(order)

    # -- data ----------------------------------------------------------------

    def finished_request(self, request_id):
        """The Request if it exists and is SUCCESS, else None."""
        if not is_uuid(request_id):
            return None
        with self.lock:
            self.advance()
            req = self.requests.get(request_id.lower())
            return req if req is not None and req.status == "SUCCESS" else None

    def request_data(self, request_id, query):
        """GET /request/{id}/data: (content type, body bytes)."""
        p = query_params(query, ("period", "format"))
        fmt = p.get("format", "json")
        check_enum(fmt, ("json", "csv"), ["format"])
        if "period" in p:
            check_enum(p["period"], tuple(PERIODS), ["period"])
        req = self.finished_request(request_id)
        # only LOADCURVE: R63's data is the raw Enedis file at its dataUrl (as the guide says)
        if req is None or not req.kind.curve or req.kind.flux:
            raise ApiError(404, MSG_NO_DATA)
        meters = [self.meter(prm) for prm in req.prms]
        period = PERIODS[p["period"]] if "period" in p else "native"
        if period != "native":
            for m in meters:
                try:
                    check_period(period, m)
                except ValueError as e:
                    raise bad_request(str(e), "Refinement", ["period"]) from None
        direction = "INJECTION" if req.direction == "INJECTION" else "CONSUMPTION"
        if fmt == "json":
            curves = {m.prm: curve_json(m, direction, req.since, req.until, period) for m in meters}
            doc = curves[meters[0].prm] if len(meters) == 1 else curves
            return "application/json; charset=utf-8", json.dumps(doc).encode()
        # CSV as in the guide; with several PRMs a first "prm" column says whose.
        several = len(meters) > 1
        lines = ["prm,startDate,powerInWatts" if several else "startDate,powerInWatts"]
        for m in meters:
            _, starts, _, values = curve_buckets(m, direction, req.since, req.until, period)
            prefix = m.prm + "," if several else ""
            for t, v in zip(starts, values):
                lines.append("%s%s,%s" % (prefix, iso(from_epoch(t)), "" if v is None else v))
        return "text/csv; charset=utf-8", ("\n".join(lines) + "\n").encode()

    def file_payload(self, request_id):
        """GET /files/<id>.json on the data server: the raw Enedis JSON bytes, or None."""
        req = self.finished_request(request_id)
        if req is None or not req.kind.flux:
            return None
        with self.lock:
            cached = self._payload_cache.get(req.id)
        if cached is None:
            meters = [self.meter(prm) for prm in req.prms]
            cached = json.dumps(PAYLOADS[req.kind.flux](req, meters), ensure_ascii=False).encode()
            with self.lock:
                if len(self._payload_cache) > 64:
                    self._payload_cache.clear()
                self._payload_cache[req.id] = cached
        return cached

    def expected_r63(self, query):
        """GET /_sim/expected/r63: the file a one-PRM R63 over that range would serve."""
        p = query_params(query, ("prm", "direction", "since", "until"))
        meter, direction, since, until = self._expected_args(p)
        req = SimpleNamespace(id=str(uuid.UUID(int=0)), since=since, until=until,
                              direction="INJECTION" if direction == "INJECTION" else "SOUTIRAGE")
        return payload_r63(req, [meter])

    def expected_curve(self, query):
        """GET /_sim/expected/loadcurve: what a one-PRM LOADCURVE would serve."""
        p = query_params(query, ("prm", "direction", "since", "until", "period"))
        meter, direction, since, until = self._expected_args(p)
        period = "native"
        if "period" in p:
            check_enum(p["period"], tuple(PERIODS), ["period"])
            period = PERIODS[p["period"]]
            try:
                check_period(period, meter)
            except ValueError as e:
                raise bad_request(str(e), "Refinement", ["period"]) from None
        return curve_json(meter, direction, since, until, period)

    def _expected_args(self, p):
        """(meter, CONSUMPTION or INJECTION, since, until) of an /expected query."""
        prm = p.get("prm", "")
        if not is_prm(prm):
            raise bad_request("prm must be exactly 14 digits", "Refinement", ["prm"])
        direction = p.get("direction", "CONSUMPTION")
        check_enum(direction, ("CONSUMPTION", "INJECTION", "SOUTIRAGE"), ["direction"])
        direction = "CONSUMPTION" if direction == "SOUTIRAGE" else direction
        meter = self.meter(prm)
        if direction == "INJECTION" and not meter.injection:
            raise bad_request("PRM %s has no injection" % prm, "Refinement", ["direction"])
        try:
            until = parse_instant(p["until"]) if "until" in p else paris_midnight(paris_date(datetime.now(UTC)))
            since = parse_instant(p["since"]) if "since" in p else until - timedelta(days=7)
        except ValueError as e:
            raise bad_request(str(e)) from None
        if since >= until:
            raise bad_request("since must be before until", "Refinement", ["since"])
        return meter, direction, since, until

    def control_ask(self, ask_id):
        with self.lock:
            self.advance()
            ask = self.asks.get(ask_id.lower()) if is_uuid(ask_id) else None
            if ask is None:
                raise ApiError(404, "Ask %s not found" % ask_id)
            doc = self.ask_json(ask)
            doc["testEnv"] = ask.test_env
            doc["deleted"] = ask.deleted
            return doc

    def page_ask(self, ask_id):
        """The Ask a signature page is for, or None (unknown or deleted)."""
        with self.lock:
            self.advance()
            ask = self.asks.get(ask_id.lower()) if is_uuid(ask_id) else None
            return None if ask is None or ask.deleted else ask


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


class Response:
    def __init__(self, status, body=b"", content_type="application/json; charset=utf-8", headers=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers or {})


def json_response(status, doc, headers=None):
    return Response(status, json.dumps(doc, ensure_ascii=False).encode(), headers=headers)


def error_response(status, message, issues=(), headers=None):
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return json_response(status, {"error": phrase, "message": message, "issues": list(issues)}, headers)


def _guess_type(body):
    text = body.lstrip()
    if text[:1] in (b"{", b"["):
        return "application/json; charset=utf-8"
    if text[:1] == b"<":
        return "text/html; charset=utf-8"
    return "text/plain; charset=utf-8"


class BodyError(Exception):
    pass


class SimHandler(BaseHTTPRequestHandler):
    """One handler for both servers; self.server.role is 'api' or 'data'."""

    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, a kept-alive response waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "switchgrid-sim/1.0"
    sys_version = ""
    timeout = 300                 # drop idle kept-alive connections

    def do_GET(self):
        self._handle()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_GET

    def log_request(self, code="-", size="-"):
        pass                      # _handle writes its own line

    def log_message(self, format, *args):
        if not self.server.sim.config.quiet:
            sys.stderr.write("%s %s\n" % (self.server.role, format % args))

    # -- plumbing ------------------------------------------------------------

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BodyError("bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > 16 << 20:
                    raise BodyError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BodyError("bad Content-Length") from None
        if length < 0 or length > 16 << 20:
            raise BodyError("body too large")
        return self.rfile.read(length) if length else b""

    def _auth(self):
        header = self.headers.get("Authorization")
        if header is None:
            return "absent"
        scheme, _, value = header.strip().partition(" ")
        token = self.server.sim.config.token
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return "valid"
        return "invalid"

    def _send(self, resp, fault=None):
        body = resp.body
        status, content_type = resp.status, resp.content_type
        if fault is not None and fault.malformed:
            body, content_type = b'{"id": "broken', "application/json; charset=utf-8"
        if fault is not None and fault.invalid_utf8 and body[:1] == b"{":
            # the real answer, with a first member whose string is not UTF-8
            body = b'{"note": "caf\xe9 \xc3\x28 \xff", ' + body[1:].lstrip()
            if body.endswith(b", }"):
                body = body[:-3] + b"}"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if fault is not None and (fault.truncate or fault.reset):
            # Announce the whole body, send half of it, then hang up: with a
            # FIN (truncate) or a TCP reset (reset).
            announced = len(body) if body else 64
            self.send_header("Content-Length", str(announced))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body[:len(body) // 2])
            self.close_connection = True
            if fault.reset:
                self._reset_connection()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.trickle_ms:
            # one byte at a time; a shutdown or a client that hangs up ends it
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                if self.server.sim.stopping.wait(fault.trickle_ms / 1000.0):
                    self.close_connection = True
                    return
            return
        self.wfile.write(body)

    def _reset_connection(self):
        """Closes the connection with a TCP RST (SO_LINGER 0) instead of a FIN."""
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())
        except OSError:
            pass

    def _zone(self, path):
        if self.server.role == "data":
            return "data"
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return "control"
        if path.startswith(PAGE_PREFIX):
            return "page"
        return "api"

    def _handle(self):
        """Every request: read, log, apply latency and faults, answer, log the status."""
        sim = self.server.sim
        started = time.monotonic()
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, split.query
        zone = self._zone(path)
        try:
            body = self._read_body()
        except BodyError as e:
            self.close_connection = True
            self._send(error_response(413 if "too large" in str(e) else 400, str(e)))
            return
        auth = self._auth()
        entry = fault = None
        if zone != "control":
            entry = self._log_arrival(zone, path, query, auth, body)
            # Latency and delays wait on the stop event: a shutdown cuts them short.
            latency_ms = sim.latency_ms
            if zone == "api" and latency_ms and sim.stopping.wait(latency_ms / 1000.0):
                self.close_connection = True
                return
            fault = sim.take_fault(zone, self.command, path)
            if fault is not None and fault.delay_ms and sim.stopping.wait(fault.delay_ms / 1000.0):
                self.close_connection = True
                return
        resp = self._answer(zone, path, query, body, auth, fault)
        note = " fault=%d" % fault.seq if fault else ""
        try:
            self._send(resp, fault)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            note += " (client gone)"
        finally:
            if entry is not None:
                sim.finish_log(entry, resp.status)
        if not sim.config.quiet and zone != "control":
            sys.stderr.write("%s %s %s %d auth=%s %.1fms%s\n" % (
                zone, self.command, self.path if len(self.path) < 300 else self.path[:300] + "...",
                resp.status, auth, (time.monotonic() - started) * 1000, note))

    def _log_arrival(self, zone, path, query, auth, body):
        """Add the request to the control log (status None until answered)."""
        parsed = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        logged_query = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True, errors="replace"):
            if k not in logged_query:
                logged_query[k] = v
            elif isinstance(logged_query[k], list):
                logged_query[k].append(v)
            else:
                logged_query[k] = [logged_query[k], v]
        test_env = self.headers.get("switchgrid-test-env", "").strip().lower() == "true"
        # the client's address and port name its TCP connection: kept-alive
        # connections show as one value over several requests
        conn = "%s:%s" % (self.client_address[0], self.client_address[1])
        return self.server.sim.log_request(zone, self.command, path, logged_query, auth, test_env,
                                           parsed, conn, self.headers.get("User-Agent"))

    def _answer(self, zone, path, query, body, auth, fault):
        """The Response: the fault's, or the real one of the zone's router."""
        try:
            if fault is not None and fault.replaces_answer():
                resp = self._fault_response(fault)
            elif zone == "control":
                resp = self._control(path, query, body)
            elif zone == "api":
                resp = self._api(path, query, body, auth)
            elif zone == "page":
                resp = self._page(path, query)
            else:
                resp = self._data(path)
        except ApiError as e:
            resp = error_response(e.status, e.message, e.issues, e.headers)
        except Exception:                         # a bug: say so, keep serving
            traceback.print_exc()
            resp = error_response(500, "internal simulator error")
        if fault is not None and fault.malformed and fault.status is None:
            resp.status = 200
        return resp

    @staticmethod
    def _fault_response(fault):
        status = fault.status if fault.status is not None else 200
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(fault.retry_after))     # whole seconds (RFC 9110)
        if fault.redirect is not None:
            headers["Location"] = fault.redirect
            return Response(fault.status or 302, b"", "text/plain; charset=utf-8", headers)
        if fault.nesting:
            body = b'{"id": ' + b"[" * fault.nesting + b"]" * fault.nesting + b"}"
            return Response(status, body, "application/json; charset=utf-8", headers)
        if fault.oversize:
            pad = max(fault.oversize - 11, 0)
            body = b'{"pad": "' + b"x" * pad + b'"}'
            return Response(status, body, "application/json; charset=utf-8", headers)
        if fault.body is not None:
            body = fault.body.encode()
            return Response(status, body, _guess_type(body), headers)
        return error_response(status, "simulated fault", (), headers)

    # -- the API --------------------------------------------------------------

    def _api(self, path, query, raw, auth):
        sim = self.server.sim
        if not path.startswith(API_PREFIX + "/"):
            raise ApiError(404, "no such endpoint: %s" % path)
        if auth != "valid":
            raise ApiError(401, "missing or invalid API token" if auth == "invalid" else
                           "an Authorization: Bearer <token> header is required",
                           headers={"WWW-Authenticate": "Bearer"})
        route = path[len(API_PREFIX):]
        parts = route.strip("/").split("/")
        method = self.command
        if method == "HEAD":
            method = "GET"

        def body():
            try:
                doc = json.loads(raw.decode("utf-8")) if raw else None
            except (ValueError, UnicodeDecodeError):
                raise bad_request("the body is not valid JSON") from None
            if not isinstance(doc, dict):
                raise bad_request("the body must be a JSON object")
            return doc

        def allow(*methods):
            if method not in methods:
                raise ApiError(405, "%s is not allowed on %s" % (method, path),
                               headers={"Allow": ", ".join(methods)})

        if route == "/search_contract":
            allow("GET")
            return json_response(200, sim.search(query))
        if route == "/ask":
            allow("GET", "POST")
            if method == "POST":
                test_env = self.headers.get("switchgrid-test-env", "").strip().lower() == "true"
                return json_response(200, sim.create_ask(body(), test_env))
            return json_response(200, sim.list_asks(query))
        if len(parts) == 2 and parts[0] == "ask":
            allow("GET", "DELETE")
            if method == "DELETE":
                return json_response(200, sim.delete_ask(parts[1]))
            return json_response(200, sim.get_ask(parts[1]))
        if route == "/order":
            allow("POST")
            return json_response(200, sim.create_order(body()))
        if len(parts) == 2 and parts[0] == "order":
            allow("GET")
            return json_response(200, sim.get_order(parts[1]))
        if len(parts) == 3 and parts[0] == "request" and parts[2] == "data":
            allow("GET")
            if not is_uuid(parts[1]):
                raise bad_request("requestId must be a uuid", "Refinement", ["requestId"])
            content_type, data = sim.request_data(parts[1], query)
            return Response(200, data, content_type)
        raise ApiError(404, "no such endpoint: %s" % path)

    # -- the signature page ----------------------------------------------------

    def _page(self, path, query):
        sim = self.server.sim
        ask_id = path[len(PAGE_PREFIX):].strip("/")
        ask = sim.page_ask(ask_id)
        if ask is None:
            return Response(404, _html("Consentement introuvable",
                                       "<p>Ce lien de consentement n'existe pas ou a été annulé.</p>"),
                            "text/html; charset=utf-8")
        if self.command == "POST":
            try:
                sim.accept_ask(ask.id)
            except ApiError as e:
                return Response(e.status, _html("Signature impossible", "<p>%s</p>" % html.escape(e.message)),
                                "text/html; charset=utf-8")
            redirect = urllib.parse.parse_qs(query).get("redirectTo")
            if redirect and redirect[0].startswith(("http://", "https://")):
                return Response(303, b"", "text/plain; charset=utf-8", {"Location": redirect[0]})
            return Response(200, _html("Merci", "<p>Votre consentement est enregistré.</p>"),
                            "text/html; charset=utf-8")
        if self.command not in ("GET", "HEAD"):
            return Response(405, b"", "text/plain; charset=utf-8", {"Allow": "GET, POST"})
        rows = "".join("<li>%s — PRM %s — %s</li>" % (
            html.escape(c["nomClientFinalOuDenominationSociale"]), c["prm"],
            html.escape(" ".join(v for k, v in sorted(c["adresseInstallationNormalisee"].items()) if v)))
            for c in ask.contracts)
        if ask.status == "ACCEPTED":
            form = "<p>Déjà signé.</p>"
        elif ask.status == "ADDRESS_CHECK_FAILED":
            form = "<p>La vérification d'adresse a échoué : ce consentement ne peut pas être signé.</p>"
        else:
            action = html.escape(path + ("?" + query if query else ""), quote=True)
            form = ('<form method="post" action="%s"><input type="hidden" name="sign" value="1">'
                    '<button type="submit">Je consens</button></form>' % action)
        signer = ask.create_args.get("signer", {})
        text = ("<p>%s %s, vous autorisez l'accès aux données des compteurs suivants :</p><ul>%s</ul>%s"
                % (html.escape(str(signer.get("firstName", ""))), html.escape(str(signer.get("lastName", ""))),
                   rows, form))
        return Response(200, _html("Consentement Enedis (simulateur)", text), "text/html; charset=utf-8")

    # -- the data server -------------------------------------------------------

    def _data(self, path):
        m = re.fullmatch(r"/files/([0-9a-fA-F-]{36})\.json", path)
        if not m or self.command not in ("GET", "HEAD"):
            raise ApiError(404, "no such file: %s" % path)
        payload = self.server.sim.file_payload(m.group(1))
        if payload is None:
            raise ApiError(404, MSG_NO_DATA)
        return Response(200, payload)

    # -- the control API -------------------------------------------------------

    def _control(self, path, query, raw):
        sim = self.server.sim
        route = path[len(CONTROL_PREFIX):] or "/"
        method = self.command
        try:
            doc = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise bad_request("the body is not valid JSON") from None
        if route == "/health" and method == "GET":
            return json_response(200, {"ok": True})
        if route == "/reset" and method == "POST":
            if not isinstance(doc, dict):
                raise bad_request("the body must be a JSON object")
            check_keys(doc, [], (), ("all",))
            sim.reset(bool(doc.get("all", False)))
            return json_response(200, {"ok": True, "all": bool(doc.get("all", False))})
        if route == "/faults":
            if method == "POST":
                return json_response(200, {"ok": True, "fault": sim.add_fault(doc)})
            if method == "DELETE":
                sim.clear_faults()
                return json_response(200, {"ok": True})
            if method == "GET":
                with sim.lock:
                    return json_response(200, [f.to_json() for f in sim.faults])
        if route == "/settings":
            if method == "POST":
                if not isinstance(doc, dict):
                    raise bad_request("the body must be a JSON object")
                check_keys(doc, [], (), ("max_page_size", "omit_prms", "latency_ms"))
                size = doc.get("max_page_size")
                if size is not None and (type(size) is not int or size < 1):
                    raise bad_request("max_page_size must be a positive integer or null",
                                      path=["max_page_size"])
                omit = doc.get("omit_prms", False)
                if type(omit) is not bool:
                    raise bad_request("omit_prms must be a boolean", path=["omit_prms"])
                latency = doc.get("latency_ms", 0)
                if type(latency) is not int or not 0 <= latency <= 600000:
                    raise bad_request("latency_ms must be an integer from 0 to 600000",
                                      path=["latency_ms"])
                with sim.lock:
                    if "max_page_size" in doc:
                        sim.max_page_size = size
                    if "omit_prms" in doc:
                        sim.omit_prms = omit
                    if "latency_ms" in doc:
                        sim.latency_ms = latency
            if method in ("GET", "POST"):
                with sim.lock:
                    return json_response(200, {"max_page_size": sim.max_page_size,
                                               "omit_prms": sim.omit_prms,
                                               "latency_ms": sim.latency_ms})
        if route == "/log" and method == "GET":
            return json_response(200, sim.log_snapshot())
        if route == "/webhooks" and method == "GET":
            return json_response(200, sim.webhooks_snapshot())
        if route == "/expected/loadcurve" and method == "GET":
            return json_response(200, sim.expected_curve(query))
        if route == "/expected/r63" and method == "GET":
            return json_response(200, sim.expected_r63(query))
        m = re.fullmatch(r"/asks/([^/]+)(/accept)?", route)
        if m and method == "GET" and not m.group(2):
            return json_response(200, sim.control_ask(m.group(1)))
        if m and method == "POST" and m.group(2):
            if not is_uuid(m.group(1)):
                raise ApiError(404, "Ask %s not found" % m.group(1))
            return json_response(200, sim.accept_ask(m.group(1)))
        raise ApiError(404, "no such control endpoint: %s %s" % (method, path))


def _html(title, content):
    return ("<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>%s</title></head>"
            "<body><h1>%s</h1>%s</body></html>" % (html.escape(title), html.escape(title), content)).encode()


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address, sim, role):
        host, _ = address
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.sim = sim
        self.role = role
        super().__init__(address, SimHandler)

    def handle_error(self, request, client_address):
        """A client that hung up (say, it timed out on a delayed answer) is no error."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def base_url(self):
        host, port = self.server_address[:2]
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, port)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_listen(text):
    """HOST:PORT (IPv6 as [::1]:PORT); the host must be a loopback address."""
    m = re.fullmatch(r"\[([0-9a-fA-F:]+)\]:(\d+)|([^:\[\]]+):(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if host == "localhost":
        host = "127.0.0.1"
    if not (re.fullmatch(r"127\.\d{1,3}\.\d{1,3}\.\d{1,3}", host) or host == "::1"):
        raise argparse.ArgumentTypeError("%s is not a loopback address: the simulator only "
                                         "listens on 127.0.0.0/8 or ::1" % host)
    if port > 65535:
        raise argparse.ArgumentTypeError("port %d is out of range" % port)
    return host, port


def parse_args(argv):
    p = argparse.ArgumentParser(description="Offline simulator of the Switchgrid REST API.")
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0),
                   help="API server address HOST:PORT (port 0 picks a free one)")
    p.add_argument("--data-listen", type=parse_listen, default=("127.0.0.1", 0),
                   help="data server (dataUrl files) address HOST:PORT")
    p.add_argument("--token", default="sim-token", help="the one accepted bearer token")
    p.add_argument("--ready-file", help="write the URLs and pid here (JSON) once listening")
    p.add_argument("--latency-ms", type=int, default=0, help="delay added to every API response")
    p.add_argument("--pending-ms", type=int, default=150, help="NOT_STARTED -> PENDING after this")
    p.add_argument("--complete-ms", type=int, default=600, help="PENDING -> SUCCESS/FAILED after this")
    p.add_argument("--long-complete-ms", type=int, default=2000,
                   help="the same for load curves over 7 days, R67 and C68_ASYNC")
    p.add_argument("--activation-ms", type=int, default=3000,
                   help="time Enedis takes to activate a load curve that was never collected")
    p.add_argument("--auto-accept-ms", type=int, default=None,
                   help="Asks sign themselves this long after creation (default: never)")
    p.add_argument("--webhook-url", default=None, help="POST webhooks to this URL")
    p.add_argument("--webhook-retry-ms", type=int, default=500, help="time between webhook attempts")
    p.add_argument("--max-page-size", type=int, default=None,
                   help="serve at most this many items per page of GET /ask, whatever the limit")
    p.add_argument("--omit-prms", action="store_true",
                   help="leave \"prms\" out of the request objects of an Order (the spec does not promise them)")
    p.add_argument("--quiet", action="store_true", help="no per-request log line on stderr")
    args = p.parse_args(argv)
    for name in ("latency_ms", "pending_ms", "complete_ms", "long_complete_ms", "activation_ms",
                 "webhook_retry_ms"):
        if getattr(args, name) < 0:
            p.error("--%s must not be negative" % name.replace("_", "-"))
    if args.max_page_size is not None and args.max_page_size < 1:
        p.error("--max-page-size must be at least 1")
    if args.auto_accept_ms is not None and args.auto_accept_ms < 0:
        p.error("--auto-accept-ms must not be negative")
    if not args.token or any(c.isspace() for c in args.token):
        p.error("--token must be non-empty and contain no white space")
    if args.webhook_url and not args.webhook_url.startswith(("http://", "https://")):
        p.error("--webhook-url must be an http(s) URL")
    return args


def write_ready_file(path, doc):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.write("\n")
    os.replace(tmp, path)


def run_ticker(sim):
    """Notice transitions by time, and send the webhooks they produce."""
    while not sim.stopping.wait(0.02):
        try:
            sim.advance()
            for delivery in sim.take_pending_events():
                threading.Thread(target=sim.deliver, args=(delivery,), daemon=True,
                                 name="webhook-%d" % delivery["seq"]).start()
        except Exception:
            traceback.print_exc()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sim = Simulator(Config(token=args.token, latency_ms=args.latency_ms, pending_ms=args.pending_ms,
                           complete_ms=args.complete_ms, long_complete_ms=args.long_complete_ms,
                           activation_ms=args.activation_ms, auto_accept_ms=args.auto_accept_ms,
                           webhook_url=args.webhook_url, webhook_retry_ms=args.webhook_retry_ms,
                           max_page_size=args.max_page_size, omit_prms=args.omit_prms,
                           quiet=args.quiet))
    try:
        api = SimServer(args.listen, sim, "api")
        data = SimServer(args.data_listen, sim, "data")
    except OSError as e:
        sys.stderr.write("switchgrid_sim: could not listen: %s\n" % e)
        return 1
    sim.api_base, sim.data_base = api.base_url(), data.base_url()

    def stop(signum, frame):
        sim.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                                name=s.role) for s in (api, data)]
    threads.append(threading.Thread(target=run_ticker, args=(sim,), daemon=True, name="ticker"))
    for t in threads:
        t.start()
    ready = {"base_url": sim.api_base + API_PREFIX, "data_url": sim.data_base,
             "control_url": sim.api_base + CONTROL_PREFIX, "pid": os.getpid()}
    if args.ready_file:
        write_ready_file(args.ready_file, ready)
    sys.stderr.write("switchgrid_sim: API %s, data %s, control %s\n"
                     % (ready["base_url"], ready["data_url"], ready["control_url"]))
    sys.stderr.flush()
    while not sim.stopping.wait(1.0):
        pass
    for s in (api, data):
        s.shutdown()
        s.server_close()
    if args.ready_file:
        try:
            with open(args.ready_file, encoding="utf-8") as f:
                if json.load(f).get("pid") == os.getpid():
                    os.unlink(args.ready_file)
        except (OSError, ValueError):
            pass
    sys.stderr.write("switchgrid_sim: stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
