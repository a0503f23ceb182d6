#!/usr/bin/env python3
"""simctl.py - drive a running switchgrid_sim.py from shell scripts and tests.

The control URL comes from $SWITCHGRID_SIM_CONTROL, or else from the ready
file named by $SWITCHGRID_SIM_READY (or from --control / --ready). Every
command prints one short, deterministic line (they run inside pg_regress
expected outputs through psql's \\!), except `log` and `webhooks`, which
print JSON. On failure: a message on stderr and exit status 1.

    reset [--all]                 clear faults and logs (--all: Asks, Orders too)
    fault '<json>'                add a fault rule (see README.md)
    clear-faults                  remove every fault rule
    count [--server S] [--path RE] [--method M] [--auth A] [--test-env] [--status N]
                                  number of logged requests matching all filters
    auth-seen [--server data]     requests on that server that carried any
                                  Authorization header
    accept <askId|userUrl>        sign an Ask through the control API
    sign <userUrl>                POST the signature page, as a browser would
    curve-summary PRM DIRECTION SINCE UNTIL [--period P]
                                  "steps=N nulls=N sum=N first=<UTC start>" of
                                  the curve the simulator serves for that range
    log                           the request log, as JSON
    webhooks                      the webhook deliveries, as JSON
    wait-ready [--timeout S]      wait until the simulator answers
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# The simulator is on loopback: never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_PAGE_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class Failure(Exception):
    pass


def control_url(args, wait=0.0):
    """The control URL, from the options or the environment."""
    if args.control or os.environ.get("SWITCHGRID_SIM_CONTROL"):
        return (args.control or os.environ["SWITCHGRID_SIM_CONTROL"]).rstrip("/")
    ready = args.ready or os.environ.get("SWITCHGRID_SIM_READY")
    if not ready:
        raise Failure("set SWITCHGRID_SIM_READY (the ready file) or SWITCHGRID_SIM_CONTROL")
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(ready, encoding="utf-8") as f:
                return json.load(f)["control_url"].rstrip("/")
        except (OSError, ValueError, KeyError) as e:
            if time.monotonic() >= deadline:
                raise Failure("cannot read the ready file %s: %s" % (ready, e)) from None
            time.sleep(0.05)


def call(url, method="GET", body=None, opener=_OPENER, timeout=30):
    """(status, decoded body) of one HTTP request; raises Failure if unreachable."""
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = ("application/x-www-form-urlencoded" if isinstance(body, bytes)
                                   else "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with opener.open(req, timeout=timeout) as res:
            return res.status, res.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode("utf-8", "replace")
    except (OSError, ValueError) as e:
        raise Failure("cannot reach %s: %s" % (url, getattr(e, "reason", e))) from None


def control(args, method, path, body=None):
    """Call the control API; returns the decoded JSON, raises Failure unless 2xx."""
    status, text = call(control_url(args) + path, method, body)
    if not 200 <= status < 300:
        try:
            text = json.loads(text).get("message", text)
        except (ValueError, AttributeError):
            pass
        raise Failure("%s %s: HTTP %d: %s" % (method, path, status, text))
    return json.loads(text)


def ask_id_of(text):
    """An Ask id, given alone or as the userUrl (http://.../c/<id>?...)."""
    path = urllib.parse.urlsplit(text).path if "://" in text else text
    ident = path.rstrip("/").rsplit("/", 1)[-1]
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", ident):
        raise Failure("not an Ask id or consent page URL: %s" % text)
    return ident


# -- commands -----------------------------------------------------------------

def cmd_reset(args):
    control(args, "POST", "/reset", {"all": args.all})
    return "reset"


def cmd_fault(args):
    try:
        spec = json.loads(args.spec)
    except ValueError as e:
        raise Failure("the fault is not valid JSON: %s" % e) from None
    control(args, "POST", "/faults", spec)
    return "fault added"


def cmd_settings(args):
    if args.spec is None:
        return json.dumps(control(args, "GET", "/settings"), sort_keys=True)
    try:
        spec = json.loads(args.spec)
    except ValueError as e:
        raise Failure("the settings are not valid JSON: %s" % e) from None
    return json.dumps(control(args, "POST", "/settings", spec), sort_keys=True)


def cmd_clear_faults(args):
    control(args, "DELETE", "/faults")
    return "faults cleared"


def _matching(args):
    log = control(args, "GET", "/log")
    try:
        path_re = re.compile(args.path) if args.path else None
    except re.error as e:
        raise Failure("--path is not a regular expression: %s" % e) from None
    out = []
    for e in log:
        if args.server and e["server"] != args.server:
            continue
        if args.method and e["method"] != args.method.upper():
            continue
        if path_re and not path_re.search(e["path"]):
            continue
        if getattr(args, "auth", None) and e["auth"] != args.auth:
            continue
        if getattr(args, "test_env", False) and not e["test_env"]:
            continue
        if getattr(args, "status", None) is not None and e["status"] != args.status:
            continue
        out.append(e)
    return out


def cmd_count(args):
    return str(len(_matching(args)))


def cmd_connections(args):
    return str(len({e.get("conn") for e in _matching(args)}))


def cmd_auth_seen(args):
    args.path = args.method = None
    return str(sum(1 for e in _matching(args) if e["auth"] != "absent"))


def cmd_accept(args):
    control(args, "POST", "/asks/%s/accept" % ask_id_of(args.ask))
    return "accepted"


def cmd_sign(args):
    if not args.url.startswith(("http://", "https://")):
        raise Failure("sign needs the Ask's userUrl, got %s" % args.url)
    status, text = call(args.url, "POST", b"sign=1", opener=_PAGE_OPENER)
    if status not in (200, 303):
        raise Failure("the consent page answered HTTP %d" % status)
    return "signed"


def cmd_curve_summary(args):
    query = {"prm": args.prm, "direction": args.direction, "since": args.since, "until": args.until}
    if args.period:
        query["period"] = args.period
    c = control(args, "GET", "/expected/loadcurve?" + urllib.parse.urlencode(query))
    values = c["values"]
    present = [v for v in values if v is not None]
    first = c["startsAt"].replace(".000Z", "Z")
    return "steps=%d nulls=%d sum=%d first=%s" % (len(values), len(values) - len(present),
                                                   sum(present), first)


def cmd_log(args):
    return json.dumps(control(args, "GET", "/log"), indent=1, ensure_ascii=False)


def cmd_webhooks(args):
    return json.dumps(control(args, "GET", "/webhooks"), indent=1, ensure_ascii=False)


def cmd_wait_ready(args):
    deadline = time.monotonic() + args.timeout
    url = control_url(args, wait=args.timeout)
    while True:
        try:
            status, _ = call(url + "/health", timeout=max(0.1, deadline - time.monotonic()))
            if status == 200:
                return "ready"
        except Failure:
            pass
        if time.monotonic() >= deadline:
            raise Failure("the simulator did not answer within %g s" % args.timeout)
        time.sleep(0.05)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="simctl.py", description="Control a running switchgrid simulator.")
    p.add_argument("--control", help="control URL (default: $SWITCHGRID_SIM_CONTROL or the ready file)")
    p.add_argument("--ready", help="ready file (default: $SWITCHGRID_SIM_READY)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("reset", help="clear faults and logs")
    s.add_argument("--all", action="store_true", help="also forget every Ask and Order")
    s.set_defaults(func=cmd_reset)

    s = sub.add_parser("fault", help="add a fault rule given as JSON")
    s.add_argument("spec")
    s.set_defaults(func=cmd_fault)

    s = sub.add_parser("settings", help="show, or change with JSON, the settings (reset restores them)")
    s.add_argument("spec", nargs="?")
    s.set_defaults(func=cmd_settings)

    s = sub.add_parser("clear-faults", help="remove every fault rule")
    s.set_defaults(func=cmd_clear_faults)

    s = sub.add_parser("count", help="count logged requests")
    s.add_argument("--server", choices=("api", "data", "page"))
    s.add_argument("--path", help="regular expression searched in the path (no query string)")
    s.add_argument("--method")
    s.add_argument("--auth", choices=("valid", "invalid", "absent"))
    s.add_argument("--test-env", action="store_true", help="only requests sent with switchgrid-test-env: true")
    s.add_argument("--status", type=int)
    s.set_defaults(func=cmd_count)

    s = sub.add_parser("connections", help="count the TCP connections the logged requests came on")
    s.add_argument("--server", choices=("api", "data", "page"))
    s.add_argument("--path", help="regular expression searched in the path (no query string)")
    s.add_argument("--method")
    s.set_defaults(func=cmd_connections)

    s = sub.add_parser("auth-seen", help="count requests that carried an Authorization header")
    s.add_argument("--server", choices=("api", "data", "page"), default="data")
    s.set_defaults(func=cmd_auth_seen)

    s = sub.add_parser("accept", help="sign an Ask through the control API")
    s.add_argument("ask", help="the Ask id or its userUrl")
    s.set_defaults(func=cmd_accept)

    s = sub.add_parser("sign", help="sign an Ask on its consent page")
    s.add_argument("url", help="the Ask's userUrl")
    s.set_defaults(func=cmd_sign)

    s = sub.add_parser("curve-summary", help="summary of the load curve the simulator serves")
    s.add_argument("prm")
    s.add_argument("direction", choices=("CONSUMPTION", "INJECTION", "SOUTIRAGE"))
    s.add_argument("since")
    s.add_argument("until")
    s.add_argument("--period", help="5min, 10min, 15min, 30min, 1h or 1d")
    s.set_defaults(func=cmd_curve_summary)

    s = sub.add_parser("log", help="print the request log (JSON)")
    s.set_defaults(func=cmd_log)

    s = sub.add_parser("webhooks", help="print the webhook deliveries (JSON)")
    s.set_defaults(func=cmd_webhooks)

    s = sub.add_parser("wait-ready", help="wait until the simulator answers")
    s.add_argument("--timeout", type=float, default=10.0)
    s.set_defaults(func=cmd_wait_ready)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print(args.func(args))
    except Failure as e:
        sys.stderr.write("simctl: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
