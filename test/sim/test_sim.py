#!/usr/bin/env python3
"""Self-test of switchgrid_sim.py, over real HTTP.

Run: python3 test/sim/test_sim.py [-v]

It starts the simulator (ports 0, short timings, a local webhook receiver),
exercises every endpoint, fault and catalogue behaviour, and measures the
latency of kept-alive requests. A second, short-lived simulator covers
--auto-accept-ms, --latency-ms, determinism across processes and a clean
stop on SIGTERM in the middle of a delayed answer.
"""

import collections
import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "switchgrid_sim.py")
SIMCTL = os.path.join(HERE, "simctl.py")
TOKEN = "test-token-123"
AUTH = {"Authorization": "Bearer " + TOKEN}

JEANNE, TANNEURS, HELENE = "09111642617347", "30001234567890", "25946599093143"
CHANGEPAS = "33333333333333"
MARC, PAUL, ANNE, LUCIE = "12345678901234", "98765432109876", "11111111111111", "22222222222222"
NAMES = {JEANNE: "Jeanne Dupond", TANNEURS: "SARL Les Tanneurs", HELENE: "Hélène Lefèvre & Fils",
         MARC: "Marc Sansservice", PAUL: "Paul Sansmesure", ANNE: "Anne Inexistant",
         LUCIE: "Lucie Vieuxcompteur", CHANGEPAS: "Nina Changepas"}
RETRY_MS = 100
ACTIVATION_MS = 1000


# -- HTTP helpers ---------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self):
        return json.loads(self.body)


def fetch(method, url, body=None, headers=None, timeout=15):
    """One request on a fresh connection; body may be a dict (sent as JSON) or bytes."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            h["Content-Type"] = "application/json"
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=data, headers=h)
        res = conn.getresponse()
        return Reply(res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
    finally:
        conn.close()


def start_simulator(*extra):
    """Start a simulator; returns (process, ready dict, ready file path)."""
    tmp = tempfile.mkdtemp(prefix="switchgrid-sim-test-")
    ready_file = os.path.join(tmp, "ready.json")
    proc = subprocess.Popen([sys.executable, SIM, "--listen", "127.0.0.1:0", "--data-listen",
                             "127.0.0.1:0", "--token", TOKEN, "--ready-file", ready_file, "--quiet"]
                            + [str(x) for x in extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.tmpdir = tmp
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("simulator exited: %s" % proc.stderr.read().decode())
        try:
            with open(ready_file) as f:
                return proc, json.load(f), ready_file
        except (OSError, ValueError):
            time.sleep(0.02)
    stop_simulator(proc)
    raise RuntimeError("simulator not ready within 10 s")


def stop_simulator(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stderr.close()
    shutil.rmtree(proc.tmpdir, ignore_errors=True)


# -- a webhook receiver that fails on demand ---------------------------------------

class Receiver:
    """Records webhooks; answers 500 for ids in fail_always, and for the first
    two attempts of ids in fail_twice."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received = []                      # (monotonic time, event)
        self.hits = collections.Counter()
        self.fail_always, self.fail_twice = set(), set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["event"]
                key = event.get("askId") or event.get("requestId")
                with receiver.lock:
                    receiver.hits[key] += 1
                    receiver.received.append((time.monotonic(), event))
                    fail = key in receiver.fail_always or (key in receiver.fail_twice
                                                           and receiver.hits[key] <= 2)
                self.send_response(500 if fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]

    def events(self, key):
        with self.lock:
            return [e for _, e in self.received if key in (e.get("askId"), e.get("requestId"))]


SIMPROC = READY = READY_FILE = RECEIVER = None


def setUpModule():
    global SIMPROC, READY, READY_FILE, RECEIVER
    RECEIVER = Receiver()
    SIMPROC, READY, READY_FILE = start_simulator(
        "--pending-ms", 50, "--complete-ms", 150, "--long-complete-ms", 300,
        "--activation-ms", ACTIVATION_MS, "--webhook-url", RECEIVER.url, "--webhook-retry-ms", RETRY_MS)


def tearDownModule():
    stop_simulator(SIMPROC)
    RECEIVER.server.shutdown()
    RECEIVER.server.server_close()


def api(method, path, body=None, headers=None, auth=True):
    h = dict(AUTH if auth else {})
    h.update(headers or {})
    return fetch(method, READY["base_url"] + path, body, h)


def ctl(method, path, body=None):
    r = fetch(method, READY["control_url"] + path, body)
    assert 200 <= r.status < 300, (method, path, r.status, r.body)
    return r.json


def log_since(seq):
    return [e for e in ctl("GET", "/log") if e["seq"] > seq]


def last_seq():
    log = ctl("GET", "/log")
    return log[-1]["seq"] if log else 0


def ms_between(a, b):
    """Milliseconds from instant a to instant b (API format, ...Z)."""
    def parse(s):
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    return round((parse(b) - parse(a)).total_seconds() * 1000)


def q(**params):
    return urllib.parse.urlencode(params)


def search(name, **kw):
    r = api("GET", "/search_contract?" + q(name=name, **kw))
    assert r.status == 200, r.body
    return r.json["results"]


_consented = set()


def consent(*prms):
    """An ACCEPTED Ask covering prms (catalogue or ad-hoc); returns the Ask."""
    ids = [search(NAMES.get(p, "Client Adhoc"), prm=p)[0]["id"] for p in prms]
    ask = api("POST", "/ask", {"electricityContracts": ids,
                               "signer": {"firstName": "Test", "lastName": "Signer"}}).json
    _consented.update(prms)
    return ctl("POST", "/asks/%s/accept" % ask["id"])


def order(*requests, consent_id=None):
    body = {"requests": list(requests)}
    if consent_id:
        body["consentId"] = consent_id
    r = api("POST", "/order", body)
    assert r.status == 200, r.body
    return r.json


def wait_order(order_id, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        o = api("GET", "/order/" + order_id).json
        if o["status"] != "PENDING_REQUESTS" or time.monotonic() > deadline:
            return o
        time.sleep(0.03)


def lc(prms, since, until, direction="CONSUMPTION", **kw):
    r = {"type": "LOADCURVE", "prms": prms, "direction": direction, "since": since, "until": until}
    r.update(kw)
    return r


def data(request_id, **params):
    return api("GET", "/request/%s/data%s" % (request_id, "?" + q(**params) if params else ""))


PARIS_SPRING = ("2024-03-31T00:00:00[Europe/Paris]", "2024-04-01T00:00:00[Europe/Paris]")
PARIS_AUTUMN = ("2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00")
WEEK = ("2024-01-07T23:00:00Z", "2024-01-14T23:00:00Z")        # 8-14 January, Paris days


class ApiTest(unittest.TestCase):
    """The API endpoints, in the order a client uses them."""

    @classmethod
    def setUpClass(cls):
        consent(JEANNE, TANNEURS, PAUL, ANNE, LUCIE, HELENE, CHANGEPAS)

    # -- authentication -----------------------------------------------------------

    def test_01_token_required(self):
        seq = last_seq()
        r = api("GET", "/search_contract?name=Dupond&prm=" + JEANNE, auth=False)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers["www-authenticate"], "Bearer")
        self.assertEqual(set(r.json), {"error", "message", "issues"})
        r = api("GET", "/order/" + str(uuid.uuid4()), headers={"Authorization": "Bearer nope"}, auth=False)
        self.assertEqual(r.status, 401)
        self.assertEqual([e["auth"] for e in log_since(seq)], ["absent", "invalid"])
        self.assertNotIn(TOKEN, json.dumps(ctl("GET", "/log")))

    # -- search -----------------------------------------------------------------

    def test_02_search_validation(self):
        for params in ({"name": "Du", "prm": JEANNE}, {"name": "Dupond"},
                       {"name": "Dupond", "prm": "0911164261734"},
                       {"name": "Dupond", "prm": "0911164261734X"},
                       {"name": "Dupond", "address": "10 rue de la Paix Paris"},
                       {"name": "Dupond", "prm": JEANNE, "foo": "bar"}):
            r = api("GET", "/search_contract?" + q(**params))
            self.assertEqual(r.status, 400, params)
            self.assertEqual(r.json["error"], "Bad Request")
            self.assertTrue(r.json["issues"] and {"_tag", "path", "message"} <= set(r.json["issues"][0]))

    def test_03_search_matching(self):
        res = search("Dupond", address="10 rue de la Paix 75002 Paris")
        self.assertEqual([c["prm"] for c in res], [JEANNE])
        c = res[0]
        self.assertEqual(c["id"], str(uuid.uuid5(uuid.uuid5(
            uuid.NAMESPACE_URL, "https://app.switchgrid.tech/enedis/v2#simulator"), "contract:" + JEANNE)))
        self.assertEqual(c["categorieClientFinalCode"], "RES")
        self.assertEqual(c["adresseInstallationNormalisee"]["ligne6"], "75002 PARIS")
        self.assertEqual(search("sarl les tanneurs", prm=TANNEURS)[0]["categorieClientFinalCode"], "PRO")
        self.assertEqual(search("Personne", address="1 rue Inconnue 99999 Nulle Part"), [])
        self.assertEqual(search("Dupond", prm=TANNEURS), [])       # a catalogue PRM, wrong name
        adhoc = search("Martin Durand", prm="55555555555555")
        self.assertEqual([(c["prm"], c["nomClientFinalOuDenominationSociale"]) for c in adhoc],
                         [("55555555555555", "Martin Durand")])

    def test_04_search_url_decoding(self):
        name, address = "Hélène Lefèvre & Fils", "3 place de l'Église 33000 Bordeaux"
        seq = last_seq()
        for query in (urllib.parse.urlencode({"name": name, "address": address}),
                      urllib.parse.urlencode({"name": name, "address": address}, quote_via=urllib.parse.quote),
                      "name=helene+LEFEVRE&address=3+place+de+l%27eglise+33000+Bordeaux"):
            r = api("GET", "/search_contract?" + query)
            self.assertEqual([c["prm"] for c in r.json["results"]], [HELENE], query)
            self.assertEqual(r.json["results"][0]["nomClientFinalOuDenominationSociale"], name)
        logged = log_since(seq)
        self.assertEqual(logged[0]["query"], {"name": name, "address": address})
        self.assertEqual(logged[1]["query"], {"name": name, "address": address})
        r = api("GET", "/search_contract?name=%C3%28%28&prm=" + HELENE)      # not UTF-8
        self.assertEqual(r.status, 400)

    # -- asks -----------------------------------------------------------------

    def test_05_ask_sign_flow(self):
        cid = search("Jeanne Dupond", prm=JEANNE)[0]["id"]
        hid = search("Hélène", prm=HELENE)[0]["id"]
        body = {"electricityContracts": [cid, hid],
                "signer": {"firstName": "Jeanne", "lastName": "Dupond", "email": "j@example.org"},
                "purposes": ["SOLAR_INSTALLATION_SIZING"], "consentDuration": "3 years",
                "scopes": [{"service": "ENEDIS_RAW_API", "id": "CONSUMPTION_DATA",
                            "args": {"types": ["CDC", "ENERGIE"], "directions": ["SOUTIRAGE"]}}]}
        r = api("POST", "/ask", body, headers={"switchgrid-test-env": "true"})
        self.assertEqual(r.status, 200, r.body)
        ask = r.json
        self.assertEqual(list(ask), ["id", "createdAt", "status", "acceptedAt", "consentCollectionDetails",
                                     "createArgs", "addressCheckResults", "consentIds", "contracts"])
        self.assertEqual(ask["status"], "PENDING_USER_ACTION")
        self.assertIsNone(ask["acceptedAt"])
        self.assertEqual(ask["createArgs"], body)
        self.assertEqual(ask["consentIds"], {})
        self.assertEqual(ask["addressCheckResults"], {JEANNE: {"status": "SUCCESS"},
                                                      HELENE: {"status": "SUCCESS"}})
        self.assertEqual([c["prm"] for c in ask["contracts"]], [JEANNE, HELENE])
        self.assertNotIn("testEnv", ask)
        url = ask["consentCollectionDetails"]["userUrl"]
        self.assertEqual(ask["consentCollectionDetails"]["service"], "WEB_HOSTED")
        self.assertEqual(url, READY["control_url"].replace("/_sim", "/c/" + ask["id"]))
        self.assertTrue(ctl("GET", "/asks/" + ask["id"])["testEnv"])

        page = fetch("GET", url)
        self.assertEqual(page.status, 200)
        self.assertIn(b"<form", page.body)
        self.assertIn("Hélène Lefèvre &amp; Fils".encode(), page.body)
        signed = fetch("POST", url, b"sign=1", {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(signed.status, 200)
        got = api("GET", "/ask/" + ask["id"]).json
        self.assertEqual(got["status"], "ACCEPTED")
        self.assertIsNotNone(got["acceptedAt"])
        self.assertEqual(set(got["consentIds"]), {JEANNE, HELENE})
        self.assertEqual(len(set(got["consentIds"].values())), 2)
        # signing again changes nothing
        fetch("POST", url, b"sign=1")
        self.assertEqual(api("GET", "/ask/" + ask["id"]).json["consentIds"], got["consentIds"])

        # an order through one of its consents: the PRM is implied
        o = order({"type": "C68"}, consent_id=got["consentIds"][HELENE])
        self.assertEqual(o["requests"][0]["prms"], [HELENE])

        # deleting revokes
        self.assertEqual(api("DELETE", "/ask/" + ask["id"]).json, {"id": ask["id"], "deleted": True})
        self.assertEqual(api("GET", "/ask/" + ask["id"]).status, 404)
        self.assertEqual(api("DELETE", "/ask/" + ask["id"]).status, 404)
        self.assertEqual(fetch("GET", url).status, 404)
        r = api("POST", "/order", {"consentId": got["consentIds"][HELENE], "requests": [{"type": "C68"}]})
        self.assertEqual(r.status, 400)
        self.assertIn("no valid consent", r.json["message"])
        self.assertEqual(api("GET", "/ask/" + str(uuid.uuid4())).status, 404)
        self.assertEqual(api("GET", "/ask/not-a-uuid").status, 400)

    def test_06_ask_contract_objects(self):
        good = {"prm": HELENE, "heldBy": {"genre": "F", "firstName": "Hélène", "lastName": "Lefèvre"},
                "address": {"street": "3 place de l'Église", "postalCode": "33000", "city": "Bordeaux",
                            "country": "France"}}
        ask = api("POST", "/ask", {"electricityContracts": [good],
                                   "signer": {"firstName": "Hélène", "lastName": "Lefèvre"}}).json
        self.assertEqual(ask["status"], "PENDING_USER_ACTION")
        self.assertEqual(ask["contracts"][0]["prm"], HELENE)
        # the page keeps redirectTo, and sends the signer there once signed
        url = ask["consentCollectionDetails"]["userUrl"] + "?" + q(redirectTo="https://example.org/done")
        self.assertIn(b"redirectTo=https", fetch("GET", url).body)
        signed = fetch("POST", url, b"sign=1")
        self.assertEqual((signed.status, signed.headers["location"]), (303, "https://example.org/done"))
        wrong = json.loads(json.dumps(good))
        wrong["address"]["postalCode"] = "75001"
        ask = api("POST", "/ask", {"electricityContracts": [wrong],
                                   "signer": {"firstName": "A", "lastName": "B"}}).json
        self.assertEqual(ask["status"], "ADDRESS_CHECK_FAILED")
        self.assertEqual(ask["addressCheckResults"][HELENE]["status"], "FAILURE")
        self.assertEqual(fetch("POST", READY["control_url"] + "/asks/%s/accept" % ask["id"]).status, 409)
        company = {"prm": "66666666666666", "heldBy": {"name": "ACME SA", "siret": "12345678900011"},
                   "address": {"street": "1 rue A", "postalCode": "67000", "city": "Strasbourg"}}
        ask = api("POST", "/ask", {"electricityContracts": [company],
                                   "signer": {"firstName": "A", "lastName": "B"}}).json
        self.assertEqual(ask["contracts"][0]["adresseInstallationNormalisee"]["ligne6"], "67000 STRASBOURG")

    def test_07_ask_validation(self):
        cid = search("Jeanne Dupond", prm=JEANNE)[0]["id"]
        signer = {"firstName": "A", "lastName": "B"}
        bad = [
            {"signer": signer},
            {"electricityContracts": [], "signer": signer},
            {"electricityContracts": [str(uuid.uuid4())], "signer": signer},
            {"electricityContracts": ["not-a-uuid"], "signer": signer},
            {"electricityContracts": [{"prm": "123"}], "signer": signer},
            {"electricityContracts": [cid]},
            {"electricityContracts": [cid], "signer": {"firstName": "A"}},
            {"electricityContracts": [cid], "signer": {"firstName": "A", "lastName": "B", "genre": "X"}},
            {"electricityContracts": [cid], "signer": signer, "purposes": ["WORLD_DOMINATION"]},
            {"electricityContracts": [cid], "signer": signer, "consentDuration": "21 years"},
            {"electricityContracts": [cid], "signer": signer, "scopes": {"id": "x"}},
            {"electricityContracts": [cid], "signer": signer, "color": "blue"},
            {"electricityContracts": [cid, cid], "signer": signer},
        ]
        for body in bad:
            r = api("POST", "/ask", body)
            self.assertEqual(r.status, 400, body)
            self.assertEqual(r.json["error"], "Bad Request")
        for raw in (b"[]", b"{not json", b""):
            self.assertEqual(api("POST", "/ask", raw).status, 400)
        ok = {"electricityContracts": [cid], "signer": signer,
              "purposes": [{"id": "DEMAND_RESPONSE"}, "ENERGY_BROKERAGE", "VEHICLE_CHARGE_DETECTION"],
              "consentDuration": "1 day", "consentCollectionMedium": {"service": "WEB_HOSTED"},
              "scopes": [{"id": "ELECTRICITY_TIMESERIES",
                          "args": {"types": ["LOADCURVE"], "directions": ["CONSUMPTION", "INJECTION"]}},
                         {"service": "ENEDIS_RAW_API", "id": "DETAILS_CONTRACTUELS"}]}
        self.assertEqual(api("POST", "/ask", ok).status, 200)

    def test_08_ask_paging(self):
        prm = "77777777777777"
        cid = search("Page Tester", prm=prm)[0]["id"]
        made = [api("POST", "/ask", {"electricityContracts": [cid],
                                     "signer": {"firstName": "P", "lastName": "T"}}).json for _ in range(25)]
        ctl("POST", "/asks/%s/accept" % made[3]["id"])
        created = [a["createdAt"] for a in made]
        self.assertEqual(created, sorted(created))
        self.assertEqual(len(set(created)), 25, "createdAt strictly increasing")
        pages = []
        for skip in (0, 10, 20, 30):
            r = api("GET", "/ask?" + q(prm=prm, skip=skip, limit=10)).json
            self.assertEqual((r["skip"], r["limit"], r["totalItemsCount"]), (skip, 10, 25))
            self.assertEqual(r["returnedItemsCount"], len(r["items"]))
            pages.append(r["items"])
        self.assertEqual([len(p) for p in pages], [10, 10, 5, 0])
        self.assertEqual([a["id"] for p in pages for a in p], [a["id"] for a in made])
        desc = api("GET", "/ask?" + q(prm=prm, limit=100, orderBy="createdAt:desc")).json["items"]
        self.assertEqual([a["id"] for a in desc], [a["id"] for a in reversed(made)])
        default = api("GET", "/ask?" + q(prm=prm)).json
        self.assertEqual((default["skip"], default["limit"], default["returnedItemsCount"]), (0, 10, 10))
        self.assertEqual(api("GET", "/ask?" + q(prm=prm, status="ACCEPTED")).json["totalItemsCount"], 1)
        self.assertEqual(api("GET", "/ask?" + q(prm=prm, status="!ACCEPTED")).json["totalItemsCount"], 24)
        self.assertEqual(api("GET", "/ask?" + q(prm="%s,!%s" % (prm, prm))).json["totalItemsCount"], 0)
        self.assertGreaterEqual(api("GET", "/ask?" + q(prm="!" + prm, limit=1)).json["totalItemsCount"], 1)
        for bad in ({"limit": 101}, {"limit": -1}, {"skip": "x"}, {"orderBy": "id:asc"},
                    {"status": "SIGNED"}, {"prm": "!123"}):
            self.assertEqual(api("GET", "/ask?" + q(**bad)).status, 400, bad)
        # a server that caps its page size below the limit asked for
        self.assertEqual(ctl("POST", "/settings", {"max_page_size": 4}),
                         {"max_page_size": 4, "omit_prms": False, "latency_ms": 0})
        try:
            r = api("GET", "/ask?" + q(prm=prm, limit=10)).json
            self.assertEqual((r["limit"], r["returnedItemsCount"], r["totalItemsCount"]), (4, 4, 25))
            r = api("GET", "/ask?" + q(prm=prm, skip=24, limit=10)).json
            self.assertEqual([a["id"] for a in r["items"]], [made[24]["id"]])
            self.assertEqual(fetch("POST", READY["control_url"] + "/settings",
                                   {"max_page_size": 0}).status, 400)
        finally:
            ctl("POST", "/reset")
        self.assertEqual(ctl("GET", "/settings"), {"max_page_size": None, "omit_prms": False, "latency_ms": 0})

    def test_07b_latency_setting(self):
        """latency_ms delays API answers from the next request on; reset restores it."""
        try:
            self.assertEqual(ctl("POST", "/settings", {"latency_ms": 300}),
                             {"max_page_size": None, "omit_prms": False, "latency_ms": 300})
            started = time.monotonic()
            self.assertEqual(api("GET", "/ask?limit=1").status, 200)
            self.assertGreaterEqual(time.monotonic() - started, 0.3)
            # the control API itself is never delayed, and the setting is checked
            self.assertEqual(fetch("POST", READY["control_url"] + "/settings",
                                   {"latency_ms": -1}).status, 400)
            self.assertEqual(fetch("POST", READY["control_url"] + "/settings",
                                   {"latency_ms": "5"}).status, 400)
        finally:
            ctl("POST", "/reset")
        self.assertEqual(ctl("GET", "/settings"), {"max_page_size": None, "omit_prms": False, "latency_ms": 0})

    # -- orders -----------------------------------------------------------------

    def test_10_order_lifecycle(self):
        o = order(lc([JEANNE], *PARIS_SPRING),
                  {"type": "R65_SYNC", "prms": [JEANNE], "direction": "SOUTIRAGE",
                   "since": "2024-03-01", "until": "2024-04-01"},
                  {"type": "C68", "prms": [JEANNE]})
        self.assertEqual(list(o), ["id", "createdAt", "status", "requests"])
        self.assertEqual(o["status"], "PENDING_REQUESTS")
        r0 = o["requests"][0]
        self.assertEqual(list(r0), ["id", "type", "prms", "direction", "since", "until", "status",
                                    "orderedAt", "completedAt", "dataUrl", "errorMessage"])
        self.assertEqual((r0["status"], r0["since"], r0["until"]),
                         ("NOT_STARTED", "2024-03-30T23:00:00.000Z", "2024-03-31T22:00:00.000Z"))
        self.assertEqual(o["requests"][2]["direction"], None)
        placed = time.monotonic()
        time.sleep(0.1)
        mid = api("GET", "/order/" + o["id"]).json
        if time.monotonic() - placed < 0.14:         # still inside the PENDING window
            self.assertEqual({r["status"] for r in mid["requests"]}, {"PENDING"})
            self.assertTrue(all(r["orderedAt"] and not r["completedAt"] for r in mid["requests"]))
        done = wait_order(o["id"])
        self.assertEqual(done["status"], "SUCCESS")
        lc_req, r65, c68 = done["requests"]
        self.assertTrue(all(r["status"] == "SUCCESS" and r["completedAt"] for r in done["requests"]))
        self.assertIsNone(lc_req["dataUrl"])
        for r in (r65, c68):
            self.assertEqual(r["dataUrl"], "%s/files/%s.json" % (READY["data_url"], r["id"]))
        # transitions happen exactly --pending-ms and --complete-ms after the order
        for r in done["requests"]:
            self.assertEqual((ms_between(o["createdAt"], r["orderedAt"]),
                              ms_between(o["createdAt"], r["completedAt"])), (50, 150))
        self.assertEqual(api("GET", "/order/" + str(uuid.uuid4())).status, 404)
        self.assertEqual(api("GET", "/order/nope").status, 400)

    def test_10b_order_omit_prms(self):
        """With omit_prms, request objects leave "prms" out; the rest is unchanged."""
        self.assertEqual(ctl("POST", "/settings", {"omit_prms": True}),
                         {"max_page_size": None, "omit_prms": True, "latency_ms": 0})
        try:
            o = order({"type": "C68", "prms": [JEANNE]})
            self.assertNotIn("prms", o["requests"][0])
            self.assertNotIn("prms", api("GET", "/order/" + o["id"]).json["requests"][0])
            self.assertEqual(fetch("POST", READY["control_url"] + "/settings",
                                   {"omit_prms": 1}).status, 400)
        finally:
            ctl("POST", "/reset")
        self.assertEqual(ctl("GET", "/settings"), {"max_page_size": None, "omit_prms": False, "latency_ms": 0})
        self.assertIn("prms", order({"type": "C68", "prms": [JEANNE]})["requests"][0])

    def test_11_order_defaults_and_long(self):
        o = order({"type": "R65", "prms": [JEANNE]}, lc([JEANNE], "2024-01-01", "2024-02-01"))
        r65 = o["requests"][0]
        until = datetime.fromisoformat(r65["until"].replace("Z", "+00:00"))
        since = datetime.fromisoformat(r65["since"].replace("Z", "+00:00"))
        paris = until.astimezone(ZoneInfo("Europe/Paris"))
        self.assertEqual((paris.hour, paris.minute), (0, 0))
        self.assertTrue(timedelta(days=7) - timedelta(hours=1) <= until - since <= timedelta(days=7, hours=1))
        self.assertEqual(r65["direction"], "SOUTIRAGE")
        done = wait_order(o["id"])
        self.assertEqual(done["status"], "SUCCESS")
        # a month of load curve takes --long-complete-ms
        self.assertEqual([ms_between(done["createdAt"], r["completedAt"]) for r in done["requests"]],
                         [150, 300])

    def test_12_order_validation(self):
        self.assertEqual(api("POST", "/order", {"requests": []}).status, 400)
        bad_requests = [
            {"type": "R99", "prms": [JEANNE]},
            {"prms": [JEANNE]},
            {"type": "LOADCURVE"},
            {"type": "LOADCURVE", "prms": ["9111642617347"]},
            {"type": "LOADCURVE", "prms": JEANNE},
            {"type": "LOADCURVE", "prms": [JEANNE, JEANNE]},
            {"type": "LOADCURVE", "prms": [JEANNE], "direction": "SOUTIRAGE"},
            {"type": "R65", "prms": [JEANNE], "direction": "CONSUMPTION"},
            {"type": "C68", "prms": [JEANNE], "direction": "SOUTIRAGE"},
            {"type": "C68", "prms": [JEANNE], "since": "2024-01-01"},
            {"type": "C68_ASYNC", "prms": [JEANNE], "direction": "CONSUMPTION"},
            {"type": "LOADCURVE", "prms": [JEANNE], "sinse": "2024-01-01"},
            {"type": "LOADCURVE", "prms": [JEANNE], "since": "01/02/2024"},
            {"type": "LOADCURVE", "prms": [JEANNE], "since": "2024-01-01T25:00"},
            {"type": "LOADCURVE", "prms": [JEANNE], "since": "2024-02-30"},
            {"type": "LOADCURVE", "prms": [JEANNE], "since": "2024-01-01T00:00:00[Mars/Olympus]"},
            {"type": "LOADCURVE", "prms": [JEANNE], "since": "2024-01-02T00:00:00+01:00",
             "until": "2024-01-01T23:00:00Z"},
            {"type": "LOADCURVE", "prms": [JEANNE], "since": "2024-01-01", "until": "2024-01-01"},
            {"type": "LOADCURVE", "prms": [JEANNE], "enedisRetryAfterLoadcurveActivation": "yes"},
            {"type": "R65", "prms": [JEANNE], "enedisRetryAfterLoadcurveActivation": True},
        ]
        for req in bad_requests:
            r = api("POST", "/order", {"requests": [req]})
            self.assertEqual(r.status, 400, req)
            self.assertTrue(r.json["issues"], req)
        self.assertEqual(api("POST", "/order", {"requests": [{"type": "C68", "prms": [JEANNE]}],
                                                "extra": 1}).status, 400)
        # every since/until form of the guide
        for since in ("2024-12-10", "2024-12-10T00:00:00", "2024-12-10T12:00:00Z", "2024-12-10T00:00:00+01:00",
                      "2024-12-10T00:00:00[Europe/Paris]", "2024-12-10T00:00:00[CET]", "2024-12-10T00:00:00.250Z"):
            r = api("POST", "/order", {"requests": [{"type": "R65_SYNC", "prms": [JEANNE], "since": since,
                                                     "until": "2024-12-20"}]})
            self.assertEqual(r.status, 200, (since, r.body))
        got = {s: api("POST", "/order", {"requests": [lc([JEANNE], s, "2024-12-20")]}).json["requests"][0]["since"]
               for s in ("2024-12-10", "2024-12-10T00:00:00[Europe/Paris]", "2024-12-10T00:00:00[CET]")}
        self.assertEqual(got, {"2024-12-10": "2024-12-10T00:00:00.000Z",
                               "2024-12-10T00:00:00[Europe/Paris]": "2024-12-09T23:00:00.000Z",
                               "2024-12-10T00:00:00[CET]": "2024-12-09T23:00:00.000Z"})

    def test_13_order_needs_consent(self):
        unsigned = "44444444444444"
        search("Pas Encore", prm=unsigned)
        for prm in (unsigned, "88888888888888"):          # searched but no Ask / never seen
            r = api("POST", "/order", {"requests": [{"type": "C68", "prms": [prm]}]})
            self.assertEqual(r.status, 400)
            self.assertIn("no valid consent", r.json["message"])
            self.assertEqual(r.json["issues"][0]["_tag"], "Forbidden")
        r = api("POST", "/order", {"consentId": str(uuid.uuid4()), "requests": [{"type": "C68"}]})
        self.assertEqual(r.status, 400)
        self.assertIn("no valid consent", r.json["message"])
        # an Ask still waiting for its signature is no consent either
        cid = search("Pas Encore", prm=unsigned)[0]["id"]
        api("POST", "/ask", {"electricityContracts": [cid], "signer": {"firstName": "P", "lastName": "E"}})
        self.assertEqual(api("POST", "/order", {"requests": [{"type": "C68", "prms": [unsigned]}]}).status, 400)

    # -- load curves --------------------------------------------------------------

    def test_20_loadcurve_shapes(self):
        o = wait_order(order(lc([JEANNE], *PARIS_SPRING), lc([JEANNE], *PARIS_AUTUMN),
                             lc([JEANNE, TANNEURS], "2024-06-01T00:00:00[Europe/Paris]",
                                "2024-06-02T00:00:00[Europe/Paris]"),
                             {"type": "R63", "prms": [JEANNE], "direction": "SOUTIRAGE",
                              "since": PARIS_SPRING[0], "until": PARIS_SPRING[1]})["id"])
        spring, autumn, multi, r63 = [r["id"] for r in o["requests"]]
        s = data(spring).json
        self.assertEqual(list(s), ["period", "startsAt", "endsAt", "values"])
        self.assertEqual((s["period"], s["startsAt"], s["endsAt"], len(s["values"])),
                         ("PT1800S", "2024-03-30T23:00:00.000Z", "2024-03-31T22:00:00.000Z", 46))
        self.assertTrue(all(v is None or (isinstance(v, int) and 100 <= v <= 6000) for v in s["values"]))
        a = data(autumn).json
        self.assertEqual((a["startsAt"], a["endsAt"], len(a["values"])),
                         ("2024-10-26T22:00:00.000Z", "2024-10-27T23:00:00.000Z", 50))
        m = data(multi).json
        self.assertEqual(set(m), {JEANNE, TANNEURS})
        self.assertEqual((m[JEANNE]["period"], len(m[JEANNE]["values"])), ("PT1800S", 48))
        self.assertEqual((m[TANNEURS]["period"], len(m[TANNEURS]["values"])), ("PT600S", 144))
        # R63 is no LOADCURVE: its data is the raw Enedis file at its dataUrl (test_23)
        self.assertEqual(data(r63).status, 404)
        self.assertIsNone([r for r in o["requests"] if r["id"] == spring][0]["dataUrl"])
        expected = ctl("GET", "/expected/loadcurve?" + q(prm=JEANNE, direction="CONSUMPTION",
                                                          since=PARIS_SPRING[0], until=PARIS_SPRING[1]))
        self.assertEqual(expected, s)
        # same values whatever the range they are asked in
        wide = ctl("GET", "/expected/loadcurve?" + q(prm=JEANNE, since="2024-03-30", until="2024-04-02"))
        offset = 46                                          # 2024-03-30 00:00Z to 23:00Z
        self.assertEqual(wide["values"][offset:offset + 46], s["values"])
        self.assertEqual(data(str(uuid.uuid4())).status, 404)
        self.assertEqual(data(str(uuid.uuid4())).json["message"], "Request not found or data not (yet) available")

    def test_21_loadcurve_realism(self):
        year = ctl("GET", "/expected/loadcurve?" + q(prm=JEANNE, since="2023-01-01T00:00:00[Europe/Paris]",
                                                      until="2024-01-01T00:00:00[Europe/Paris]", period="1d"))
        self.assertEqual(len(year["values"]), 365)
        jan, jul = year["values"][:31], year["values"][181:212]
        self.assertGreater(sum(jan) / 31, 1.5 * sum(jul) / 31, "winter above summer")
        week = ctl("GET", "/expected/loadcurve?" + q(prm=JEANNE, since=WEEK[0], until=WEEK[1]))["values"]
        present = [v for v in week if v is not None]
        self.assertTrue(150 <= min(present) and max(present) <= 6000)
        nulls = len(week) - len(present)
        self.assertLessEqual(nulls, 12)
        by_hour = collections.defaultdict(list)
        for i, v in enumerate(week):
            if v is not None:
                by_hour[(i // 2) % 24].append(v)                 # WEEK starts at 00:00 Paris
        mean = {h: sum(v) / len(v) for h, v in by_hour.items()}
        self.assertLess(mean[3], mean[8])
        self.assertLess(mean[3], mean[19])
        self.assertGreater(mean[19], mean[15])
        sun = ctl("GET", "/expected/loadcurve?" + q(prm=TANNEURS, direction="INJECTION",
                                                     since="2024-06-20T22:00:00Z", until="2024-06-21T22:00:00Z",
                                                     period="1h"))["values"]
        self.assertEqual(sun[0:3], [0, 0, 0])
        self.assertGreater(max(v for v in sun if v is not None), 500)

    def test_22_resampling_and_csv(self):
        o = wait_order(order(lc([TANNEURS], *WEEK), lc([JEANNE], *PARIS_SPRING))["id"])
        week_id, spring_id = [r["id"] for r in o["requests"]]
        native = data(week_id).json
        self.assertEqual((native["period"], len(native["values"])), ("PT600S", 1008))
        hourly = data(week_id, period="1h").json
        self.assertEqual((hourly["period"], len(hourly["values"])), ("PT3600S", 168))
        for h, v in enumerate(hourly["values"]):
            chunk = [x for x in native["values"][6 * h:6 * h + 6] if x is not None]
            self.assertEqual(v, math.floor(sum(chunk) / len(chunk) + 0.5) if chunk else None)
        self.assertEqual(len(data(week_id, period="30min").json["values"]), 336)
        daily = data(week_id, period="1d").json
        self.assertEqual((daily["period"], daily["startsAt"], daily["endsAt"], len(daily["values"])),
                         ("P1D", "2024-01-07T23:00:00.000Z", "2024-01-14T23:00:00.000Z", 7))
        for d, v in enumerate(daily["values"]):
            chunk = [x for x in native["values"][144 * d:144 * d + 144] if x is not None]
            self.assertEqual(v, math.floor(sum(chunk) / len(chunk) + 0.5))
        spring_day = data(spring_id, period="1d").json
        self.assertEqual((spring_day["startsAt"], spring_day["endsAt"], len(spring_day["values"])),
                         ("2024-03-30T23:00:00.000Z", "2024-03-31T22:00:00.000Z", 1))
        spring = data(spring_id).json["values"]
        present = [v for v in spring if v is not None]
        self.assertEqual(spring_day["values"][0], math.floor(sum(present) / len(present) + 0.5))
        for period in ("5min", "15min"):
            self.assertEqual(data(week_id, period=period).status, 400)   # finer / not a multiple
        self.assertEqual(data(spring_id, period="10min").status, 400)
        self.assertEqual(data(spring_id, period="7min").status, 400)
        self.assertEqual(data(spring_id, format="xml").status, 400)
        r = data(spring_id, format="csv")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/csv"))
        lines = r.body.decode().splitlines()
        self.assertEqual(lines[0], "startDate,powerInWatts")
        self.assertEqual(len(lines), 47)
        self.assertEqual(lines[1], "2024-03-30T23:00:00.000Z,%s" % ("" if spring[0] is None else spring[0]))
        self.assertEqual([ln.split(",")[1] for ln in lines[1:]], ["" if v is None else str(v) for v in spring])
        self.assertEqual(len(data(week_id, format="csv", period="1h").body.decode().splitlines()), 169)

    # -- Enedis failures --------------------------------------------------------------

    def test_23_r63_raw_file(self):
        o = wait_order(order({"type": "R63", "prms": [JEANNE], "since": PARIS_SPRING[0], "until": PARIS_SPRING[1]},
                             {"type": "R63_SYNC", "prms": [HELENE], "since": PARIS_AUTUMN[0],
                              "until": PARIS_AUTUMN[1]},
                             {"type": "R63", "prms": [CHANGEPAS], "since": "2024-06-04T00:00:00[Europe/Paris]",
                              "until": "2024-06-05T00:00:00[Europe/Paris]"},
                             {"type": "R63", "prms": [TANNEURS], "direction": "INJECTION",
                              "since": "2024-06-04", "until": "2024-06-05"})["id"])
        self.assertEqual(o["status"], "SUCCESS", o)
        spring, autumn, change, sun = [json.loads(fetch("GET", r["dataUrl"]).body) for r in o["requests"]]
        self.assertEqual(spring["header"]["codeFlux"], "R63")
        m = spring["mesures"][0]
        self.assertEqual((m["idPrm"], m["periode"]), (JEANNE, {"dateDebut": "2024-03-31", "dateFin": "2024-04-01"}))
        g = m["grandeur"][0]
        self.assertEqual((g["grandeurMetier"], g["grandeurPhysique"], g["unite"]), ("CONS", "PA", "W"))
        pts = g["points"]
        self.assertEqual(set(pts[0]), {"v", "d", "p", "n", "iv", "ec"})
        self.assertTrue(all(isinstance(p["v"], str) and p["p"] == "PT30M" for p in pts))
        # end of the step, Paris local time, no offset; 02:00-03:00 does not exist that day
        self.assertEqual(len(pts), 46)
        self.assertEqual([p["d"] for p in pts[:4]], ["2024-03-31 00:30:00", "2024-03-31 01:00:00",
                                                     "2024-03-31 01:30:00", "2024-03-31 03:00:00"])
        self.assertEqual(pts[-1]["d"], "2024-04-01 00:00:00")
        # the same values as LOADCURVE's (which is stamped at the start, in UTC)
        lc_values = ctl("GET", "/expected/loadcurve?" + q(prm=JEANNE, since=PARIS_SPRING[0],
                                                           until=PARIS_SPRING[1]))["values"]
        self.assertEqual([int(p["v"]) for p in pts], [v for v in lc_values if v is not None])
        # autumn: 50 half-hours, 02:00 and 02:30 twice, told apart by position only
        a = autumn["mesures"][0]["grandeur"][0]["points"]
        self.assertEqual(len(a), 50)
        self.assertEqual([p["d"][11:16] for p in a[2:8]], ["01:30", "02:00", "02:30", "02:00", "02:30", "03:00"])
        # a gap is a missing point
        jeanne_autumn = ctl("GET", "/expected/r63?" + q(prm=JEANNE, since=PARIS_AUTUMN[0], until=PARIS_AUTUMN[1]))
        self.assertEqual(len(jeanne_autumn["mesures"][0]["grandeur"][0]["points"]), 49)
        # the step changes at 12:00 Paris: PT10M up to it, PT30M after
        c = change["mesures"][0]["grandeur"][0]["points"]
        steps = [p["p"] for p in c]
        self.assertEqual(steps, sorted(steps, key=lambda x: x != "PT10M"))
        last10 = max(i for i, p in enumerate(c) if p["p"] == "PT10M")
        self.assertEqual((c[last10]["d"], c[last10 + 1]["d"], c[last10 + 1]["p"]),
                         ("2024-06-04 12:00:00", "2024-06-04 12:30:00", "PT30M"))
        self.assertEqual(len(c) + 1, 72 + 24)          # 72 PT10M and 24 PT30M steps, one gap
        # LOADCURVE serves that meter in its coarser step, the mean of the finer values
        lc_change = ctl("GET", "/expected/loadcurve?" + q(prm=CHANGEPAS, since="2024-06-04T00:00:00[Europe/Paris]",
                                                           until="2024-06-05T00:00:00[Europe/Paris]"))
        self.assertEqual((lc_change["period"], len(lc_change["values"])), ("PT1800S", 48))
        first3 = [int(p["v"]) for p in c[:3]]
        self.assertEqual(lc_change["values"][0], math.floor(sum(first3) / 3 + 0.5))
        self.assertEqual(ctl("GET", "/expected/r63?" + q(prm=CHANGEPAS, since="2024-06-04T00:00:00[Europe/Paris]",
                                                          until="2024-06-05T00:00:00[Europe/Paris]"))["mesures"],
                         change["mesures"])
        self.assertEqual(sun["mesures"][0]["grandeur"][0]["grandeurMetier"], "PROD")
        self.assertTrue(all(p["p"] == "PT10M" for p in sun["mesures"][0]["grandeur"][0]["points"]))

    def test_30_catalogue_failures(self):
        o = wait_order(order({"type": "R65_SYNC", "prms": [PAUL], "since": "2024-03-01", "until": "2024-03-08"},
                             {"type": "C68", "prms": [PAUL]},
                             {"type": "C68", "prms": [ANNE]},
                             {"type": "LOADCURVE", "prms": [LUCIE], "since": "2024-03-01", "until": "2024-03-02"},
                             {"type": "R65_SYNC", "prms": [LUCIE], "since": "2024-03-01", "until": "2024-03-02"},
                             lc([JEANNE], "2024-03-01", "2024-03-02", direction="INJECTION"),
                             lc([TANNEURS], "2024-03-01", "2024-03-02", direction="INJECTION"))["id"])
        self.assertEqual(o["status"], "SOME_REQUESTS_FAILED")
        got = [(r["status"], r["errorMessage"]) for r in o["requests"]]
        self.assertEqual(got, [
            ("FAILED", "SGT4G3: Aucune mesure trouvée sur ce point."),
            ("SUCCESS", None),
            ("FAILED", "SGT401: Demande non recevable : point inexistant"),
            ("FAILED", "SGT4M8: Le dispositif de comptage du point ne permet pas de consulter les données "
                       "de courbe de charge."),
            ("SUCCESS", None),
            ("FAILED", "SGT588: La demande ne peut pas aboutir, le client ne dispose pas d’un contrat en "
                       "injection sur ce point."),
            ("SUCCESS", None)])
        self.assertTrue(all(r["dataUrl"] is None for r in o["requests"] if r["status"] == "FAILED"))
        self.assertEqual(data(o["requests"][3]["id"]).status, 404)

    def test_31_loadcurve_activation(self):
        marc = consent(MARC)
        text = ("La demande ne peut aboutir : aucun service souscrit de courbe de charge n'est present "
                "pour la periode demandee")
        t0 = time.monotonic()
        first = order(lc([MARC], "2024-05-01", "2024-05-02"))
        retry = order({"type": "LOADCURVE", "direction": "CONSUMPTION", "since": "2024-05-01",
                       "until": "2024-05-02", "enedisRetryAfterLoadcurveActivation": True},
                      consent_id=marc["consentIds"][MARC])
        first = wait_order(first["id"])
        self.assertEqual((first["status"], first["requests"][0]["errorMessage"]), ("SOME_REQUESTS_FAILED", text))
        self.assertEqual(data(first["requests"][0]["id"]).status, 404)
        time.sleep(0.25)
        waiting = api("GET", "/order/" + retry["id"]).json
        self.assertEqual((waiting["status"], waiting["requests"][0]["status"], waiting["requests"][0]["errorMessage"]),
                         ("PENDING_REQUESTS", "PENDING", text))
        # another order during activation, without the flag, fails too
        during = wait_order(order(lc([MARC], "2024-05-01", "2024-05-02"))["id"])
        self.assertEqual(during["requests"][0]["errorMessage"], text)
        done = wait_order(retry["id"])
        self.assertGreaterEqual(time.monotonic() - t0, ACTIVATION_MS / 1000.0)
        first_done = first["requests"][0]["completedAt"]
        self.assertEqual(ms_between(first_done, done["requests"][0]["completedAt"]), ACTIVATION_MS)
        self.assertEqual((done["status"], done["requests"][0]["errorMessage"]), ("SUCCESS", None))
        self.assertEqual(len(data(done["requests"][0]["id"]).json["values"]), 48)
        later = wait_order(order(lc([MARC], "2024-05-01", "2024-05-02"))["id"])
        self.assertEqual(later["status"], "SUCCESS")
        # the other data of the meter never needed an activation
        self.assertEqual(wait_order(order({"type": "R65_SYNC", "prms": [MARC]})["id"])["status"], "SUCCESS")

    # -- raw Enedis payloads ------------------------------------------------------------

    def test_40_enedis_payloads(self):
        week = {"since": "2024-04-01T00:00:00[Europe/Paris]", "until": "2024-04-08T00:00:00[Europe/Paris]"}
        o = wait_order(order(dict(type="R65_SYNC", prms=[JEANNE], **week), dict(type="R64_SYNC", prms=[JEANNE], **week),
                             dict(type="R66_SYNC", prms=[JEANNE], **week), {"type": "C68", "prms": [JEANNE]},
                             dict(type="R65", prms=[JEANNE, TANNEURS], **week),
                             dict(type="R67", prms=[JEANNE], since="2024-01-01T00:00:00[Europe/Paris]",
                                  until="2024-03-01T00:00:00[Europe/Paris]"),
                             {"type": "C68_ASYNC", "prms": [JEANNE, TANNEURS]},
                             dict(type="R64", prms=[TANNEURS], direction="INJECTION", **week))["id"],
                       timeout=15)
        self.assertEqual(o["status"], "SUCCESS", o)
        seq = last_seq()
        docs = [json.loads(fetch("GET", r["dataUrl"]).body) for r in o["requests"]]
        r65, r64, r66, c68, r65multi, r67, c68a, r64inj = docs

        header = r65["header"]
        self.assertEqual(set(header), {"siDemandeur", "typeDestinataire", "idDestinataire", "codeFlux",
                                       "idDemande", "modePublication", "idCanalContact", "format"})
        self.assertEqual((header["codeFlux"], r64["header"]["codeFlux"], r66["header"]["codeFlux"]),
                         ("R65", "R64", "R66"))
        m = r65["mesures"][0]
        self.assertEqual((m["idPrm"], m["periode"], m["pas"], m["modeCalcul"], m["typeValeur"]),
                         (JEANNE, {"dateDebut": "2024-04-01", "dateFin": "2024-04-08"}, "P1D", "DIFF.INDEX",
                          "GLOBALE"))
        g = m["grandeur"][0]
        self.assertEqual((g["grandeurMetier"], g["grandeurPhysique"], g["unite"]), ("CONS", "EA", "Wh"))
        self.assertEqual([p["d"] for p in g["points"]], ["2024-04-0%d" % d for d in range(1, 8)])
        self.assertTrue(all(isinstance(p["v"], str) for p in g["points"]))
        energy = {p["d"]: int(p["v"]) for p in g["points"]}

        # R65 = the integral of the load curve, on days without gaps
        curve = ctl("GET", "/expected/loadcurve?" + q(prm=JEANNE, since="2024-03-31T22:00:00Z",
                                                       until="2024-04-07T22:00:00Z"))["values"]
        checked = 0
        for day in range(7):
            values = curve[48 * day:48 * day + 48]
            if None not in values:
                self.assertEqual(energy["2024-04-%02d" % (day + 1)], math.floor(sum(values) / 2 + 0.5))
                checked += 1
        self.assertGreater(checked, 0)

        # R64: integer cumulative indexes, R65(d) = index(d+1) - index(d)
        ctx = r64["mesures"][0]["contexte"][0]
        self.assertEqual((ctx["etapeMetier"], ctx["contexteReleve"], ctx["typeReleve"]), ("BRUT", "COL", "AQ"))
        total = ctx["grandeur"][0]["cadranTotalisateur"]
        self.assertEqual(total["codeCadran"], "IDX_EAS_T")
        idx = {v["d"][:10]: v["v"] for v in total["valeur"]}
        self.assertTrue(all(isinstance(v, int) for v in idx.values()))
        self.assertEqual(len(idx), 8)
        for d, wh in energy.items():
            nxt = (datetime.fromisoformat(d) + timedelta(days=1)).date().isoformat()
            self.assertEqual(idx[nxt] - idx[d], wh)
        classes = ctx["grandeur"][0]["calendrier"][0]["classeTemporelle"]
        for i, v in enumerate(total["valeur"]):
            self.assertEqual(sum(c["valeur"][i]["v"] for c in classes), v["v"])
        self.assertEqual(r64inj["mesures"][0]["contexte"][0]["grandeur"][0]["grandeurMetier"], "PROD")

        # R66: VA as strings, the time of the maximum in local time, at or above the curve
        g66 = r66["mesures"][0]["grandeur"][0]
        self.assertEqual((g66["grandeurPhysique"], g66["unite"], len(g66["points"])), ("PMA", "VA", 7))
        for day, p in enumerate(g66["points"]):
            self.assertRegex(p["d"], r"^2024-04-0%d \d\d:\d\d:\d\d$" % (day + 1))
            present = [v for v in curve[48 * day:48 * day + 48] if v is not None]
            self.assertGreaterEqual(int(p["v"]), max(present))

        self.assertEqual([x["idPrm"] for x in r65multi["mesures"]], [JEANNE, TANNEURS])
        self.assertEqual(c68["point"]["id"], JEANNE)
        self.assertEqual(c68["point"]["situationContractuelle"]["structureTarifaire"]["puissanceSouscriteMax"],
                         {"valeur": "9", "unite": "kVA"})
        self.assertIsInstance(c68a, list)
        self.assertEqual([x["idPrm"] for x in c68a], [JEANNE, TANNEURS])
        self.assertTrue({"donneesGenerales", "situationAlimentation", "situationComptage",
                         "situationsContractuelles", "syntheseContractuelle"} <= set(c68a[0]))
        months = r67["mesures"][0]["contexte"][0]["grandeur"][0]["calendrier"][0]["classeTemporelle"][0]["quantite"]
        self.assertEqual([(x["dbtMesure"], x["finMesure"]) for x in months],
                         [("2024-01-01", "2024-02-01"), ("2024-02-01", "2024-03-01")])

        # the data server is another origin: it got no token, and says so
        logged = log_since(seq)
        self.assertEqual({(e["server"], e["auth"]) for e in logged}, {("data", "absent")})
        fetch("GET", o["requests"][0]["dataUrl"], headers=AUTH)
        self.assertEqual(log_since(seq)[-1]["auth"], "valid")
        self.assertEqual(fetch("GET", READY["data_url"] + "/files/%s.json" % uuid.uuid4()).status, 404)
        self.assertEqual(fetch("GET", READY["data_url"] + "/files/%s.json" % o["requests"][5]["id"]).status, 200)

    def test_41_enedis_dst_days(self):
        """The raw files over both DST changes of 2024, for a PT30M and a PT10M meter."""
        for prm, direction, step in ((JEANNE, "SOUTIRAGE", 1800), (TANNEURS, "INJECTION", 600)):
            for first, days, hours in (("2024-03-31", 1, 23), ("2024-10-27", 1, 25)):
                since, until = first + "T00:00:00[Europe/Paris]", "%sT00:00:00[Europe/Paris]" % (
                    datetime.fromisoformat(first) + timedelta(days=days)).date().isoformat()
                o = wait_order(order(dict(type="R65_SYNC", prms=[prm], direction=direction, since=since, until=until),
                                     dict(type="R64_SYNC", prms=[prm], direction=direction, since=since, until=until),
                                     dict(type="R66_SYNC", prms=[prm], direction=direction, since=since,
                                          until=until))["id"], timeout=15)
                r65, r64, r66 = [json.loads(fetch("GET", r["dataUrl"]).body) for r in o["requests"]]
                g = r65["mesures"][0]["grandeur"][0]
                self.assertEqual(g["grandeurMetier"], "PROD" if direction == "INJECTION" else "CONS")
                self.assertEqual([p["d"] for p in g["points"]], [first])
                start = datetime.fromisoformat(first + "T00:00:00").replace(tzinfo=ZoneInfo("Europe/Paris"))
                end = (datetime.fromisoformat(first + "T00:00:00") + timedelta(days=1)).replace(
                    tzinfo=ZoneInfo("Europe/Paris"))
                self.assertEqual(end.timestamp() - start.timestamp(), hours * 3600)
                curve = ctl("GET", "/expected/loadcurve?" + q(
                    prm=prm, direction="INJECTION" if direction == "INJECTION" else "CONSUMPTION",
                    since=start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    until=end.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")))["values"]
                # 46 half-hours on the spring day, 50 on the autumn day (or 138, 150 steps of 10 min)
                self.assertEqual(len(curve), hours * 3600 // step)
                if None not in curve:
                    self.assertEqual(int(g["points"][0]["v"]), math.floor(sum(curve) * step / 3600 + 0.5))
                total = r64["mesures"][0]["contexte"][0]["grandeur"][0]["cadranTotalisateur"]["valeur"]
                self.assertEqual([v["d"] for v in total],
                                 [first + " 00:00:00", (datetime.fromisoformat(first) + timedelta(days=1))
                                  .date().isoformat() + " 00:00:00"])
                self.assertEqual(total[1]["v"] - total[0]["v"], int(g["points"][0]["v"]))
                p66 = r66["mesures"][0]["grandeur"][0]["points"]
                self.assertEqual(len(p66), 1)
                self.assertTrue(p66[0]["d"].startswith(first + " "))

    # -- faults -------------------------------------------------------------------------

    def tearDown(self):
        ctl("DELETE", "/faults")

    def test_50_fault_status_retry_after(self):
        ctl("POST", "/faults", {"method": "GET", "path": "/search_contract", "status": 503,
                                "retry_after": 1, "times": 2})
        path = "/search_contract?" + q(name="Dupond", prm=JEANNE)
        for _ in range(2):
            r = api("GET", path)
            self.assertEqual((r.status, r.headers.get("retry-after")), (503, "1"))
            self.assertEqual(r.json["error"], "Service Unavailable")
        self.assertEqual(api("GET", path).status, 200)
        ctl("POST", "/faults", {"method": "*", "path": "^/enedis/v2/order/", "status": 500, "times": -1,
                                "body": "<html>Internal error</html>"})
        for _ in range(3):
            r = api("GET", "/order/" + str(uuid.uuid4()))
            self.assertEqual((r.status, r.body), (500, b"<html>Internal error</html>"))
            self.assertTrue(r.headers["content-type"].startswith("text/html"))
        ctl("DELETE", "/faults")
        self.assertEqual(api("GET", "/order/" + str(uuid.uuid4())).status, 404)
        ctl("POST", "/faults", {"server": "data", "path": "/files/", "status": 502})
        self.assertEqual(fetch("GET", READY["data_url"] + "/files/x.json").status, 502)
        for bad in ({"status": 42}, {"times": 0}, {"path": "("}, {"server": "moon"}, {"nope": 1},
                    {"delay_ms": -5}, {"truncate": "yes"}):
            self.assertEqual(fetch("POST", READY["control_url"] + "/faults", bad).status, 400, bad)

    def test_51_fault_delay(self):
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "delay_ms": 1000})
        seq = last_seq()
        result = {}

        def slow():
            t = time.monotonic()
            result["status"] = api("GET", "/order/" + str(uuid.uuid4())).status
            result["elapsed"] = time.monotonic() - t

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.1)
        t = time.monotonic()
        self.assertEqual(len(search("Dupond", prm=JEANNE)), 1)
        self.assertLess(time.monotonic() - t, 0.5, "another request is served meanwhile")
        in_flight = [e for e in log_since(seq) if "/order/" in e["path"]]
        self.assertEqual([e["status"] for e in in_flight], [None])
        thread.join(5)
        self.assertEqual(result["status"], 404)
        self.assertGreaterEqual(result["elapsed"], 1.0)

    def test_52_fault_truncate(self):
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "truncate": True})
        u = urllib.parse.urlsplit(READY["base_url"])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        conn.request("GET", u.path + "/order/" + str(uuid.uuid4()), headers=AUTH)
        res = conn.getresponse()
        announced = int(res.getheader("Content-Length"))
        with self.assertRaises(http.client.IncompleteRead) as cm:
            res.read()
        self.assertLess(len(cm.exception.partial), announced)
        conn.close()
        self.assertEqual(api("GET", "/order/" + str(uuid.uuid4())).status, 404)   # once only

    def test_53_fault_malformed(self):
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "malformed": True})
        r = api("GET", "/order/" + str(uuid.uuid4()))
        self.assertEqual((r.status, r.body, r.headers["content-length"]), (200, b'{"id": "broken', "14"))
        with self.assertRaises(ValueError):
            r.json

    def test_54_fault_reset_trickle_bodies(self):
        u = urllib.parse.urlsplit(READY["base_url"])
        oid = str(uuid.uuid4())
        # reset: half the announced body, then a TCP reset
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "reset": True})
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        conn.request("GET", u.path + "/order/" + oid, headers=AUTH)
        res = conn.getresponse()
        with self.assertRaises((http.client.IncompleteRead, ConnectionResetError)):
            res.read()
        conn.close()
        # trickle: a byte at a time, the whole body in the end
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "trickle_ms": 2})
        t = time.monotonic()
        r = api("GET", "/order/" + oid)
        self.assertEqual(r.status, 404)
        self.assertGreaterEqual(time.monotonic() - t, len(r.body) * 0.002)
        self.assertEqual(r.json["error"], "Not Found")
        # invalid UTF-8 in the real answer; deep nesting; a body of an exact size
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "invalid_utf8": True})
        r = api("GET", "/order/" + oid)
        self.assertEqual(r.status, 404)
        with self.assertRaises(UnicodeDecodeError):
            r.body.decode("utf-8")
        self.assertEqual(json.loads(r.body.decode("latin-1"))["error"], "Not Found")
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "nesting": 1000})
        r = api("GET", "/order/" + oid)
        self.assertEqual((r.status, r.body[:9], len(r.body)), (200, b'{"id": [[', 2008))
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "oversize": 5000, "status": 503})
        r = api("GET", "/order/" + oid)
        self.assertEqual((r.status, len(r.body)), (503, 5000))
        self.assertEqual(len(r.json["pad"]), 4989)
        # a redirect to another host (the data server)
        target = READY["data_url"] + "/files/%s.json" % oid
        ctl("POST", "/faults", {"method": "GET", "path": "/order/", "redirect": target})
        r = api("GET", "/order/" + oid)
        self.assertEqual((r.status, r.headers["location"]), (302, target))
        self.assertEqual(api("GET", "/order/" + oid).status, 404)     # each fault used once
        for bad in ({"reset": 1}, {"trickle_ms": -1}, {"nesting": "deep"}, {"oversize": 1.5},
                    {"redirect": "ftp://x"}):
            self.assertEqual(fetch("POST", READY["control_url"] + "/faults", bad).status, 400, bad)

    # -- webhooks -----------------------------------------------------------------------

    def test_60_webhooks(self):
        cid = search("Jeanne Dupond", prm=JEANNE)[0]["id"]
        signer = {"firstName": "W", "lastName": "H"}
        flaky = api("POST", "/ask", {"electricityContracts": [cid], "signer": signer}).json["id"]
        dead = api("POST", "/ask", {"electricityContracts": [cid], "signer": signer}).json["id"]
        RECEIVER.fail_twice.add(flaky)
        RECEIVER.fail_always.add(dead)
        ctl("POST", "/asks/%s/accept" % flaky)
        ctl("POST", "/asks/%s/accept" % dead)
        o = order({"type": "C68", "prms": [JEANNE]}, {"type": "C68", "prms": [ANNE]})
        ok_id, failed_id = [r["id"] for r in o["requests"]]

        def deliveries():
            return {d["event"].get("askId") or d["event"].get("requestId"): d for d in ctl("GET", "/webhooks")}

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            got = deliveries()
            if all(k in got and got[k]["delivered"] is not None for k in (flaky, dead, ok_id, failed_id)):
                break
            time.sleep(0.05)
        self.assertEqual([a["status"] for a in got[flaky]["attempts"]], [500, 500, 204])
        self.assertTrue(got[flaky]["delivered"])
        self.assertEqual([a["status"] for a in got[dead]["attempts"]], [500, 500, 500])
        self.assertFalse(got[dead]["delivered"])
        self.assertEqual(len(RECEIVER.events(dead)), 3)
        times = [t for t, e in RECEIVER.received if e.get("askId") == dead]
        self.assertGreaterEqual(times[1] - times[0], RETRY_MS / 1000.0 * 0.9)
        event = RECEIVER.events(flaky)[-1]
        self.assertEqual(set(event), {"_tag", "createdAt", "organizationId", "askId"})
        self.assertEqual(event["_tag"], "ask.accepted")
        success = RECEIVER.events(ok_id)[0]
        self.assertEqual(success, {"_tag": "order.request_success", "createdAt": success["createdAt"],
                                   "organizationId": event["organizationId"], "orderId": o["id"],
                                   "requestType": "C68", "requestId": ok_id})
        self.assertEqual(RECEIVER.events(failed_id)[0]["_tag"], "order.request_failed")
        completed = {r["id"]: r["completedAt"] for r in api("GET", "/order/" + o["id"]).json["requests"]}
        self.assertEqual(success["createdAt"], completed[ok_id])

    # -- performance ---------------------------------------------------------------------

    def test_70_keepalive_latency(self):
        o = order({"type": "C68", "prms": [JEANNE]})
        u = urllib.parse.urlsplit(READY["base_url"])
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        path = u.path + "/order/" + o["id"]
        conn.request("GET", path, headers=AUTH)
        conn.getresponse().read()                      # warm up
        n, t = 200, time.perf_counter()
        for _ in range(n):
            conn.request("GET", path, headers=AUTH)
            res = conn.getresponse()
            res.read()
            self.assertEqual(res.status, 200)
        mean_ms = (time.perf_counter() - t) / n * 1000
        conn.close()
        sys.stderr.write("\n    mean latency of %d kept-alive GET /order: %.2f ms\n" % (n, mean_ms))
        self.assertLess(mean_ms, 20, "a kept-alive request should not wait for a delayed ACK")


class SimctlTest(unittest.TestCase):
    """simctl.py against the running simulator."""

    def simctl(self, *args, env=None, ok=True):
        e = dict(os.environ, SWITCHGRID_SIM_READY=READY_FILE)
        e.pop("SWITCHGRID_SIM_CONTROL", None)
        e.update(env or {})
        p = subprocess.run([sys.executable, SIMCTL] + list(args), capture_output=True, text=True, env=e,
                           timeout=30)
        if ok:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def test_simctl(self):
        self.assertEqual(self.simctl("wait-ready", "--timeout", "5").stdout, "ready\n")
        self.assertEqual(self.simctl("reset").stdout, "reset\n")
        self.assertEqual(self.simctl("count").stdout, "0\n")
        search("Dupond", prm=JEANNE)
        api("GET", "/order/" + str(uuid.uuid4()), auth=False)
        self.assertEqual(self.simctl("count", "--path", "/search_contract").stdout, "1\n")
        self.assertEqual(self.simctl("count", "--method", "GET", "--path", "^/enedis/v2/order/").stdout, "1\n")
        self.assertEqual(self.simctl("count", "--auth", "absent").stdout, "1\n")
        self.assertEqual(self.simctl("count", "--server", "data").stdout, "0\n")
        self.assertEqual(self.simctl("fault", '{"method": "GET", "path": "/search_contract", "status": 429}')
                         .stdout, "fault added\n")
        self.assertEqual(api("GET", "/search_contract?" + q(name="Dupond", prm=JEANNE)).status, 429)
        self.assertEqual(self.simctl("fault", '{"path": "/x", "status": 503, "times": -1}').stdout, "fault added\n")
        self.assertEqual(self.simctl("clear-faults").stdout, "faults cleared\n")
        self.assertEqual(ctl("GET", "/faults"), [])

        cid = search("Hélène", prm=HELENE)[0]["id"]
        for how in ("accept-id", "accept-url", "sign"):
            ask = api("POST", "/ask", {"electricityContracts": [cid], "signer": {"firstName": "H", "lastName": "L"}},
                      headers={"switchgrid-test-env": "true"}).json
            url = ask["consentCollectionDetails"]["userUrl"]
            if how == "sign":
                self.assertEqual(self.simctl("sign", url).stdout, "signed\n")
            else:
                self.assertEqual(self.simctl("accept", ask["id"] if how == "accept-id" else url).stdout,
                                 "accepted\n")
            self.assertEqual(api("GET", "/ask/" + ask["id"]).json["status"], "ACCEPTED")
        self.assertEqual(self.simctl("count", "--method", "POST", "--path", "/ask", "--test-env").stdout, "3\n")
        self.assertEqual(self.simctl("count", "--server", "page").stdout, "1\n")

        o = wait_order(order({"type": "C68", "prms": [JEANNE]})["id"])
        fetch("GET", o["requests"][0]["dataUrl"])
        self.assertEqual(self.simctl("auth-seen", "--server", "data").stdout, "0\n")
        fetch("GET", o["requests"][0]["dataUrl"], headers={"Authorization": "Bearer x"})
        self.assertEqual(self.simctl("auth-seen", "--server", "data").stdout, "1\n")

        summary = self.simctl("curve-summary", TANNEURS, "CONSUMPTION", *WEEK).stdout
        c = ctl("GET", "/expected/loadcurve?" + q(prm=TANNEURS, since=WEEK[0], until=WEEK[1]))
        present = [v for v in c["values"] if v is not None]
        self.assertEqual(summary, "steps=1008 nulls=%d sum=%d first=2024-01-07T23:00:00Z\n"
                         % (1008 - len(present), sum(present)))
        self.assertEqual(json.loads(self.simctl("log").stdout)[0]["seq"], 1)

        # via SWITCHGRID_SIM_CONTROL, and failures
        self.assertEqual(self.simctl("count", env={"SWITCHGRID_SIM_CONTROL": READY["control_url"],
                                                   "SWITCHGRID_SIM_READY": ""}).returncode, 0)
        p = self.simctl("accept", str(uuid.uuid4()), ok=False)
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        self.assertIn("404", p.stderr)
        p = self.simctl("fault", "{nope", ok=False)
        self.assertEqual(p.returncode, 1)
        p = self.simctl("reset", env={"SWITCHGRID_SIM_READY": "/nonexistent/ready"}, ok=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ready file", p.stderr)


class SecondSimulatorTest(unittest.TestCase):
    """Options that need their own process: auto-accept, latency, SIGTERM."""

    def test_auto_accept_latency_determinism_and_stop(self):
        proc, ready, ready_file = start_simulator("--auto-accept-ms", 100, "--latency-ms", 60)
        try:
            base = ready["base_url"]
            t = time.monotonic()
            res = json.loads(fetch("GET", base + "/search_contract?" + q(name="Dupond", prm=JEANNE),
                                   headers=AUTH).body)["results"]
            self.assertGreaterEqual(time.monotonic() - t, 0.06)
            ask = json.loads(fetch("POST", base + "/ask", {"electricityContracts": [res[0]["id"]],
                                                           "signer": {"firstName": "A", "lastName": "B"}},
                                   AUTH).body)
            self.assertEqual(ask["status"], "PENDING_USER_ACTION")
            time.sleep(0.2)
            got = json.loads(fetch("GET", base + "/ask/" + ask["id"], headers=AUTH).body)
            self.assertEqual(got["status"], "ACCEPTED")
            created = datetime.fromisoformat(got["createdAt"].replace("Z", "+00:00"))
            accepted = datetime.fromisoformat(got["acceptedAt"].replace("Z", "+00:00"))
            self.assertEqual(accepted - created, timedelta(milliseconds=100))
            # the same curve in another process
            query = "/expected/loadcurve?" + q(prm=TANNEURS, direction="INJECTION", since="2024-06-01",
                                               until="2024-06-03")
            self.assertEqual(fetch("GET", ready["control_url"] + query).body,
                             fetch("GET", READY["control_url"] + query).body)
            # SIGTERM while an answer is delayed for 30 s: exits at once, removes its ready file
            fetch("POST", ready["control_url"] + "/faults", {"path": "/order/", "delay_ms": 30000})
            hung = threading.Thread(target=lambda: self.assertRaises(
                (http.client.RemoteDisconnected, ConnectionError),
                fetch, "GET", base + "/order/" + str(uuid.uuid4()), None, AUTH), daemon=True)
            hung.start()
            time.sleep(0.2)
            t = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(5), 0)
            self.assertLess(time.monotonic() - t, 3)
            hung.join(5)
            self.assertFalse(hung.is_alive())
            self.assertFalse(os.path.exists(ready_file))
        finally:
            stop_simulator(proc)

    def test_bad_options(self):
        for args in (["--listen", "0.0.0.0:0"], ["--listen", "192.168.1.1:80"], ["--pending-ms", "-1"],
                     ["--webhook-url", "ftp://x"]):
            p = subprocess.run([sys.executable, SIM] + args, capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2, args)


if __name__ == "__main__":
    unittest.main()
