#!/usr/bin/env python3
"""bench/measure.py: the figures of bench/run, each against its baseline.

Run by bench/run, which starts the simulator and a cluster (its worker follows
the current database) and sets PGHOST, PGPORT, PGUSER, PGDATABASE,
SG_SIM_BASE_URL, SG_SIM_CONTROL_URL and SG_TOKEN.  Prints a table and writes
a CSV: name, value, baseline, ratio, target, verdict.  Standard library only;
talks SQL through psql and HTTP through curl, as a user would.
"""

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BASE = os.environ["SG_SIM_BASE_URL"]
CONTROL = os.environ["SG_SIM_CONTROL_URL"]
TOKEN = os.environ.get("SG_TOKEN", "sim-token")
PRM = "09111642617347"          # the simulator's PT30M residential meter
PRM10 = "30001234567890"        # its PT10M meter: the load-curve figures
TMP = tempfile.mkdtemp(prefix="switchgrid-bench-")
ROWS = []                       # (name, value, baseline, ratio, target, verdict, unit)


def psql(sql, *args):
    """Runs sql in a fresh session; returns its output (-At), stripped."""
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", *args, "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def psql_file(path):
    subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null",
                    "-f", path], check=True)


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(CONTROL + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=60) as r:
        return json.loads(r.read())


def curl_many(urls, parallel=0):
    """Seconds one curl process takes to GET every URL, reusing connections."""
    cfg = os.path.join(TMP, "curl.cfg")
    with open(cfg, "w") as f:
        f.write('header = "Authorization: Bearer %s"\n' % TOKEN)
        for u in urls:
            f.write('url = "%s"\noutput = "/dev/null"\n' % u)
    cmd = ["curl", "-s", "-S", "--no-progress-meter", "--fail", "--noproxy", "*", "-K", cfg]
    if parallel:
        cmd += ["--parallel", "--parallel-max", str(parallel)]
    t = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - t


def best(n, fn):
    return min(fn() for _ in range(n))


def record(name, value, baseline, target, unit, better="lower"):
    """One figure; target is (op, bound) on the ratio value/baseline, or None."""
    ratio = value / baseline if baseline else float("nan")
    verdict = ""
    if target is not None:
        op, bound = target
        ok = ratio <= bound if op == "<=" else ratio >= bound
        verdict = "ok" if ok else "MISSED"
    ROWS.append((name, value, baseline, ratio, "%s %s" % target if target else "", verdict, unit))
    print("  %-58s %10.3f %-5s vs %10.3f  = %6.2fx  %s %s" % (
        name, value, unit, baseline, ratio, "%s %s" % target if target else "", verdict), flush=True)


def note(name, text):
    ROWS.append((name, "", "", "", "", text, ""))
    print("  %-58s %s" % (name, text), flush=True)


def wait_all_finished(where, deadline_s=300):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if psql("SELECT count(*) FROM switchgrid.orders WHERE finished_at IS NULL AND %s" % where) == "0":
            return
        time.sleep(0.25)                # a psql a time: keep the CPU for what is measured
    raise SystemExit("bench: orders did not finish within %d s" % deadline_s)


def settings(**gucs):
    for k, v in gucs.items():
        psql("ALTER SYSTEM SET switchgrid.%s = %s" % (k, v))
    psql("SELECT pg_reload_conf()")
    time.sleep(0.3)


# ---------------------------------------------------------------------------

def setup():
    psql("CREATE EXTENSION IF NOT EXISTS switchgrid")
    settings(max_requests_per_second=0, max_concurrency=32, poll_interval="'100ms'")
    ask = psql("SELECT switchgrid_ask(ARRAY(SELECT c.contract_id FROM (VALUES ('Jeanne Dupond', '%s'),"
               " ('SARL Les Tanneurs', '%s')) m(n, p), LATERAL switchgrid_search_contract(m.n, prm => m.p) c),"
               " '{\"firstName\": \"Jeanne\", \"lastName\": \"Dupond\"}') ->> 'id'" % (PRM, PRM10))
    control("POST", "/asks/%s/accept" % ask)


def place(n, request_sql, park=False):
    """Places n one-request Orders; parked ones are not polled until woken."""
    # one transaction places them all: past the default budget of 100
    sql = ("BEGIN; SET LOCAL switchgrid.max_orders_per_transaction = %d;"
           " SELECT count(switchgrid_order(%s)) FROM generate_series(1, %d);"
           % (max(n, 100), request_sql, n))
    if park:
        sql += " UPDATE switchgrid.orders SET next_poll_at = 'infinity' WHERE finished_at IS NULL;"
    sql += " COMMIT;"
    psql(sql)


def ceiling(order_id):
    print("The simulator's own ceiling (zero latency, GET /order/{id}):", flush=True)
    urls = ["%s/order/%s" % (BASE, order_id)] * 1000
    one = best(3, lambda: curl_many(urls))
    par = best(3, lambda: curl_many(urls * 2, parallel=32))
    print("  curl, one connection:           %6.0f requests/s" % (1000 / one))
    print("  curl --parallel --parallel-max 32: %4.0f requests/s" % (2000 / par), flush=True)
    ROWS.append(("simulator ceiling, curl one connection (req/s)", 1000 / one, "", "", "", "", "req/s"))
    ROWS.append(("simulator ceiling, curl --parallel 32 (req/s)", 2000 / par, "", "", "", "", "req/s"))
    return one


def status_calls(order_id, curl_s):
    print("Status look-ups, 1,000 in one session, zero latency:", flush=True)
    script = os.path.join(TMP, "status.sql")
    with open(script, "w") as f:
        f.write("SELECT switchgrid_order_status('%s') IS NOT NULL;\n" % order_id * 1000)

    def run():
        t = time.monotonic()
        psql_file(script)
        return time.monotonic() - t
    xmin = psql("SELECT xmin FROM switchgrid.orders WHERE order_id = '%s'" % order_id)
    sg = best(3, run)
    # the floor of the session itself: 1,000 statements that call nothing
    with open(script, "w") as f:
        f.write("SELECT NULL::jsonb IS NOT NULL;\n" * 1000)
    floor = best(3, run)
    with open(script, "w") as f:
        f.write("SELECT switchgrid_order_status('%s') IS NOT NULL;\n" % order_id * 1000)
    record("switchgrid_order_status() x1000 vs curl x1000 (s)", sg, curl_s, ("<=", 1.3), "s")
    record("  the same session's 1,000 empty statements vs curl x1000 (s)", floor, curl_s, None, "s")
    same = psql("SELECT xmin FROM switchgrid.orders WHERE order_id = '%s'" % order_id) == xmin
    note("unchanged look-ups leave the row as it was (xmin)", "yes" if same else "NO: the row was rewritten")

    try:
        psql("CREATE EXTENSION IF NOT EXISTS http")
    except subprocess.CalledProcessError:
        note("pgsql-http x1000 vs curl x1000", "skipped: the http extension is not installed")
        return
    call = ("SELECT (http(('GET', '%s/order/%s', ARRAY[http_header('Authorization', 'Bearer %s')],"
            " NULL, NULL)::http_request)).status;\n" % (BASE, order_id, TOKEN))
    for label, prefix in (("default", ""),
                          ("TCP keep-alive", "SELECT http_set_curlopt('CURLOPT_TCP_KEEPALIVE', '1');\n")):
        with open(script, "w") as f:
            f.write(prefix + call * 1000)
        record("pgsql-http x1000 (%s) vs curl x1000 (s)" % label, best(3, run), curl_s, None, "s")


def sim_log():
    return control("GET", "/log")


def worker(n, concurrency, latency_ms):
    """req/s of the worker on n parked one-request Orders at this latency."""
    settings(max_concurrency=concurrency)
    since = psql("SELECT now()")
    place(n, "switchgrid_request('C68', ARRAY['%s'])" % PRM, park=True)
    time.sleep(1.0)                    # the simulator finishes them meanwhile
    control("POST", "/reset")
    control("POST", "/settings", {"latency_ms": latency_ms})
    psql("UPDATE switchgrid.orders SET next_poll_at = now() WHERE next_poll_at = 'infinity'")
    wait_all_finished("true")
    end = float(psql("SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin)))"
                     " FROM switchgrid.orders WHERE first_seen >= '%s'" % since))
    log = [e for e in sim_log() if e["server"] == "api"]
    control("POST", "/settings", {"latency_ms": 0})
    start = min(e["at"] for e in log)
    return len(log) / (end - start), len(log)


def worker_figures():
    print("The worker: one-request Orders, latency 50 ms, no rate limit:", flush=True)
    serial, _ = worker(40, 1, 50)
    piped, nreq = worker(400, 32, 50)
    control("POST", "/settings", {"latency_ms": 50})
    order_id = psql("SELECT order_id FROM switchgrid.orders LIMIT 1")
    ceil = 800 / curl_many(["%s/order/%s" % (BASE, order_id)] * 800, parallel=32)
    control("POST", "/settings", {"latency_ms": 0})
    record("worker, 400 Orders, max_concurrency 32 vs serial (req/s)", piped, serial, (">=", 20), "req/s")
    record("worker, 400 Orders vs curl --parallel-max 32 (req/s)", piped, ceil, (">=", 0.7), "req/s")
    print("  (%d API requests; curl --parallel-max 32 at 50 ms: %.0f req/s)" % (nreq, ceil), flush=True)


class RssSampler(threading.Thread):
    """Peak RssAnon (kB) of a process, sampled every 2 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.path = "/proc/%d/status" % pid
        self.peak = 0
        self.stop = threading.Event()

    @staticmethod
    def read(path):
        with open(path) as f:
            m = re.search(r"RssAnon:\s+(\d+)", f.read())
        return int(m.group(1)) if m else 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.read(self.path))
            except OSError:
                return
            time.sleep(0.002)


def timed_session(setup_sql, sql, with_memory=False):
    """Seconds sql takes (server clock) in a fresh session, and its peak RssAnon growth (kB)."""
    p = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, bufsize=1)
    p.stdin.write(setup_sql + "\nSELECT pg_backend_pid();\n")
    p.stdin.flush()
    pid = int(p.stdout.readline())
    sampler = RssSampler(pid)
    before = sampler.read(sampler.path)
    if with_memory:
        sampler.start()
    p.stdin.write("SELECT clock_timestamp() AS t0 \\gset\n%s;\n"
                  "SELECT extract(epoch FROM clock_timestamp() - :'t0');\n\\q\n" % sql)
    p.stdin.flush()
    out = p.stdout.read()
    p.wait()
    sampler.stop.set()
    if p.returncode != 0:
        raise SystemExit("bench: a timed session failed")
    return float(out.strip().splitlines()[-1]), sampler.peak - before


def loadcurve_order(since, until):
    oid = psql("SELECT switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['%s'], 'CONSUMPTION',"
               " '%s 00:00 Europe/Paris', '%s 00:00 Europe/Paris')) ->> 'id'" % (PRM10, since, until))
    wait_all_finished("order_id = '%s'" % oid)
    return oid, psql("SELECT request_id FROM switchgrid.requests WHERE order_id = '%s'" % oid)


def curl_one(url, out="/dev/null"):
    r = subprocess.run(["curl", "-s", "-S", "--fail", "--noproxy", "*", "-o", out, "-w", "%{time_total}",
                        "-H", "Authorization: Bearer %s" % TOKEN, url],
                       check=True, capture_output=True, text=True)
    return float(r.stdout)


def loadcurve_figures():
    # LOADCURVE goes back 24 months: two years of the PT10M meter
    print("Load curves, 2 years of PT10M (105,120 points):", flush=True)
    # the table that holds the points (a view over loadcurve_days since 0.2.0)
    psql("TRUNCATE switchgrid.loadcurve_days"
         if psql("SELECT to_regclass('switchgrid.loadcurve_days') IS NOT NULL") == "t"
         else "TRUNCATE switchgrid.loadcurve")
    oid6, req6 = loadcurve_order("2022-01-01", "2024-01-01")
    points = int(psql("SELECT count(*) FROM switchgrid.loadcurve"))
    url = "%s/request/%s/data?format=json" % (BASE, req6)

    # the worker's ingest: from its download's start to the commit of the points
    start = min(e["at"] for e in sim_log() if e["path"].endswith("/request/%s/data" % req6))
    commit = float(psql("SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))"
                        " FROM switchgrid.requests WHERE request_id = '%s'" % req6))
    ingest = commit - start

    body = os.path.join(TMP, "body.json")
    rows3 = os.path.join(TMP, "rows3.copy")
    rows6 = os.path.join(TMP, "rows6.copy")
    transfer = best(3, lambda: curl_one(url, body))
    psql("COPY (SELECT prm, ts, power_w FROM switchgrid_loadcurve('%s')) TO '%s'" % (req6, rows3))
    psql("COPY (SELECT prm, 'CONSUMPTION', ts, power_w, '%s'::uuid, now(), step_s"
         " FROM switchgrid_loadcurve('%s')) TO '%s'" % (req6, req6, rows6))
    lc3 = "CREATE TEMP TABLE t (prm text, ts timestamptz, power_w double precision);"
    lc6 = ("CREATE TEMP TABLE t (prm text, direction text, ts timestamptz, power_w double precision,"
           " request_id uuid, fetched_at timestamptz, step_s integer, PRIMARY KEY (prm, direction, ts));")
    copy3 = best(3, lambda: timed_session(lc3, "COPY t FROM '%s'" % rows3)[0])
    copy6 = best(3, lambda: timed_session(lc6, "COPY t FROM '%s'" % rows6)[0])

    insert = "INSERT INTO t SELECT prm, ts, power_w FROM switchgrid_loadcurve('%s')"
    sg = best(3, lambda: timed_session(lc3, insert % req6)[0])
    mem6 = min(timed_session(lc3, insert % req6, with_memory=True)[1] for _ in range(2))
    jsonb = best(3, lambda: timed_session(
        lc3 + "\n\\set body `cat %s`" % body,
        "INSERT INTO t SELECT '%s', (b->>'startsAt')::timestamptz + (e.i - 1) * interval '10 minutes',"
        " (e.v #>> '{}')::float8 FROM (SELECT :'body'::jsonb AS b) s,"
        " jsonb_array_elements(b->'values') WITH ORDINALITY AS e(v, i)" % PRM10)[0])
    record("switchgrid_loadcurve() INSERT..SELECT vs curl + COPY (s)", sg, transfer + copy3, ("<=", 1.0), "s")
    record("switchgrid_loadcurve() INSERT..SELECT vs jsonb in SQL (s)", sg, jsonb, None, "s")
    record("worker ingest, download start to commit vs curl + COPY (s)", ingest, transfer + copy6,
           ("<=", 1.5), "s")
    print("  (%d points; curl %.3f s, COPY %.3f s into a 3-column table, %.3f s into one of the"
          " same shape and key)" % (points, transfer, copy3, copy6), flush=True)

    # storage: every relation behind switchgrid.loadcurve, found in the catalog
    size, stored = storage()
    record("load-curve storage, bytes per point vs 64", size / stored, 64, ("<=", 1.0), "B")

    print("Load curves, 1 year of PT10M (52,560 points): peak memory against 2 years", flush=True)
    oid1, req1 = loadcurve_order("2023-01-01", "2024-01-01")
    mem1 = min(timed_session(lc3, insert % req1, with_memory=True)[1] for _ in range(2))
    record("switchgrid_loadcurve() peak RssAnon growth, 2 vs 1 year (kB)", mem6, mem1, ("<=", 1.2), "kB")


def storage():
    """Bytes (heap, toast, indexes) of the relations holding switchgrid.loadcurve's points, and points.

    A bench/storage.sql, if the tree has one, says it instead: psql -At runs it,
    and the last two values it prints are the bytes and the points.
    """
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "storage.sql")
    if os.path.exists(script):
        out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-f", script],
                             check=True, capture_output=True, text=True).stdout.split()
        return float(out[-2]), int(out[-1])
    psql("VACUUM ANALYZE switchgrid.loadcurve" if psql(
        "SELECT relkind FROM pg_class WHERE oid = 'switchgrid.loadcurve'::regclass") in ("r", "p")
        else "SELECT 1")
    size = psql("""
        WITH RECURSIVE base(rel) AS (
            SELECT 'switchgrid.loadcurve'::regclass::oid
            UNION
            -- a view: the tables its rule reads
            SELECT d.refobjid FROM base b
            JOIN pg_rewrite w ON w.ev_class = b.rel
            JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                             AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> b.rel),
        leaf AS (
            -- a partitioned table: its partitions; a plain table: itself
            SELECT DISTINCT COALESCE(t.relid, b.rel) AS rel
            FROM base b LEFT JOIN LATERAL pg_partition_tree(b.rel) t ON true)
        SELECT sum(pg_relation_size(l.rel) + pg_indexes_size(l.rel)
                   + COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0))
        FROM leaf l JOIN pg_class c ON c.oid = l.rel
        WHERE c.relkind IN ('r', 'm')""")
    return float(size), int(psql("SELECT count(*) FROM switchgrid.loadcurve"))


def main():
    out_csv = sys.argv[1]
    print("switchgrid benchmark, %s; %s" % (time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                            psql("SELECT version()")), flush=True)
    with open("/proc/loadavg") as f:
        print("load average before the run: %s (nproc %d)" % (" ".join(f.read().split()[:3]),
                                                             os.cpu_count()), flush=True)
    setup()
    place(1, "switchgrid_request('C68', ARRAY['%s'])" % PRM)
    wait_all_finished("true")
    done = psql("SELECT order_id FROM switchgrid.orders WHERE finished_at IS NOT NULL LIMIT 1")
    curl_s = ceiling(done)
    status_calls(done, curl_s)
    worker_figures()
    loadcurve_figures()
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "value", "baseline", "ratio", "target", "verdict"])
        for name, value, baseline, ratio, target, verdict, unit in ROWS:
            fmt = (lambda x: "%.4f" % x if isinstance(x, float) else x)
            w.writerow([name, fmt(value), fmt(baseline), fmt(ratio), target, verdict])


if __name__ == "__main__":
    main()
