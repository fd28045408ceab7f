#!/usr/bin/env python3
"""Hostile request bodies against a running `ltvpipe serve`.

Sends COUNT bodies (bounded also by --seconds) to /v1/predict and
/v1/predict/batch over keep-alive connections: valid users with random
features, the same mutated byte by byte, hostile values (NaN, 1e999, format
specifiers, NUL bytes, escaped NULs, lone surrogates, invalid UTF-8, deep
nesting, long strings, wrong types), random bytes, CSV batches and wrong
content types. Every answer must be a 4xx JSON error with code, message and
field, or a 200 with a valid prediction; a 5xx, a connection the server
drops, or no answer within --timeout seconds is a failure. Prints one
summary line and exits 1 on any failure, 2 on bad usage. Deterministic for a
seed. Standard library only.
"""
import argparse
import http.client
import json
import math
import random
import sys
import time
import urllib.parse

FEATURES = [
    "rev_window", "rev_d0", "rev_max_day", "purchases_window", "events_window", "events_d0",
    "active_days_window", "engagement", "first_purchase_day", "cost", "purchase_days",
    "days_since_purchase", "days_since_active", "rev_per_purchase_day", "rev_last7",
    "events_last7_share", "age_days", "window_days", "rev_to_date",
]
WHOLE = {"purchases_window", "events_window", "events_d0", "active_days_window", "purchase_days",
         "first_purchase_day", "days_since_purchase", "days_since_active", "age_days", "window_days"}
HOSTILE_TEXT = [
    "%s%s%s%n", "%x%x%x%p", "%1000000d", "\\u0000", "\u00e9\u4e2d\U0001f600", "a" * 5000,
    "'; DROP TABLE aliases; --", "../../etc/passwd", "\r\n\r\nHTTP/1.1 200 OK", "${jndi:x}",
]
HOSTILE_RAW = [  # JSON value texts, not all of them JSON
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "-0", "0.0", "1e308",
    "123456789012345678901234567890", "true", "null", "[]", "{}", '"3"', "0x10", "01",
    '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', "-", "1.", ".5", "+1", "1e", '"\\x"',
]


def valid_user(rng, app):
    user = {"app": app}
    if rng.random() < 0.7:
        user["campaign"] = rng.choice(["", "fb_us_ios", "brand_new", "x" * rng.randint(1, 40)])
    for name in rng.sample(FEATURES, rng.randint(0, 8)):
        if name in WHOLE:
            user[name] = rng.choice([0, 1, rng.randint(0, 90), float(rng.randint(0, 90))])
        elif name == "events_last7_share":
            user[name] = rng.random()
        else:
            user[name] = rng.choice([0, 1, 2.5, rng.random() * 100, float(rng.randint(0, 90))])
    if "age_days" not in user and rng.random() < 0.2:
        user["install_time"] = "2025-%02d-%02dT10:00:00Z" % (rng.randint(1, 12), rng.randint(1, 28))
        user["as_of"] = "2026-01-01"
    return user


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        pos = rng.randint(0, len(data)) if data else 0
        if op < 0.3 and data:
            data[min(pos, len(data) - 1)] = rng.randint(0, 255)
        elif op < 0.55:
            data[pos:pos] = bytes([rng.randint(0, 255) for _ in range(rng.randint(1, 4))])
        elif op < 0.8 and data:
            del data[pos:pos + rng.randint(1, 8)]
        else:
            data[pos:pos] = rng.choice([b"\0", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"[[[[", b'"', b"\\", b"%n"])
    return bytes(data)


def hostile_user(rng, app):
    pairs = ['"app":' + json.dumps(rng.choice([app, rng.choice(HOSTILE_TEXT)]))]
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(FEATURES + ["app", "campaign", "install_time", "as_of", rng.choice(HOSTILE_TEXT)])
        value = rng.choice(HOSTILE_RAW + [json.dumps(rng.choice(HOSTILE_TEXT))])
        pairs.append(json.dumps(key) + ":" + value)
    rng.shuffle(pairs)
    return ("{" + ",".join(pairs) + "}").encode("utf-8", "surrogatepass")


def csv_body(rng, app):
    cols = ["app"] + rng.sample(FEATURES + ["campaign", "install_time"], rng.randint(0, 5))
    if rng.random() < 0.1:
        cols.append(rng.choice(HOSTILE_TEXT))
    lines = [",".join(cols)]
    for _ in range(rng.randint(0, 20)):
        cells = []
        for c in cols:
            if c == "app":
                cells.append(rng.choice([app, "", '"a,b"', '"unterminated']))
            elif c in ("campaign", "install_time"):
                cells.append(rng.choice(["", "x", "2025-01-01", "%n", "\"q\"\"q\""]))
            else:
                cells.append(rng.choice(["", "1", "2.5", "-1", "nan", "inf", "1e999", "x", "0"]))
        if rng.random() < 0.05:
            cells.append("extra")
        lines.append(",".join(cells))
    body = ("\r\n" if rng.random() < 0.5 else "\n").join(lines).encode()
    return mutate(rng, body) if rng.random() < 0.3 else body


def make_request(rng, app):
    """(method, path, content_type, body, kind) for one request."""
    kind = rng.random()
    if kind < 0.25:
        return "POST", "/v1/predict", "application/json", json.dumps(valid_user(rng, app)).encode(), "valid"
    if kind < 0.35:
        users = [valid_user(rng, app) for _ in range(rng.randint(1, 30))]
        return "POST", "/v1/predict/batch", "application/json", json.dumps(users).encode(), "valid_batch"
    if kind < 0.55:
        return "POST", "/v1/predict", "application/json", mutate(rng, json.dumps(valid_user(rng, app)).encode()), "mutated"
    if kind < 0.72:
        return "POST", "/v1/predict", "application/json", hostile_user(rng, app), "hostile"
    if kind < 0.78:
        users = b",".join(hostile_user(rng, app) for _ in range(rng.randint(1, 5)))
        return "POST", "/v1/predict/batch", "application/json", b"[" + users + b"]", "hostile_batch"
    if kind < 0.86:
        return "POST", "/v1/predict/batch", "text/csv", csv_body(rng, app), "csv"
    if kind < 0.9:
        depth = rng.choice([10, 17, 100, 10000])
        return "POST", "/v1/predict", "application/json", (b"[" * depth + b"]" * depth * rng.randint(0, 1)), "deep"
    if kind < 0.95:
        body = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 300)))
        path = rng.choice(["/v1/predict", "/v1/predict/batch", "/v1/aliases/production"])
        return "POST", path, rng.choice(["application/json", "text/csv"]), body, "random"
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    path = rng.choice(["/", "/v1/models/%25n", "/v1/models/1", "/v1/models/" + "9" * 30, "/v1/../etc",
                       "/v1/predict?explain=%s", "/metrics", "/v1/aliases/history", "/%00",
                       "/v1/models/production/x", "/" + "a" * 2000])
    ctype = rng.choice(["application/json", "text/plain", "", "application/json; charset=utf-8"])
    return method, path, ctype, json.dumps(valid_user(rng, app)).encode(), "route"


def check(kind, path, status, body):
    """None when the answer is acceptable, else why not."""
    if status >= 500:
        return "status %d" % status
    if path == "/" and status == 200:
        return None if body.startswith(b"<!doctype html>") else "the page is not HTML"
    if kind == "csv" and status == 200:
        lines = body.decode().split("\r\n")
        ok = lines[0].startswith("app,campaign,model_version,") and lines[-1] == "" and len(lines) >= 3
        return None if ok else "a CSV answer without its header and rows"
    if path == "/metrics" and status == 200:
        return None if b"ltvpipe_http_requests_total" in body else "metrics without counters"
    try:
        doc = json.loads(body)
    except ValueError:
        return "status %d with a body that is not JSON: %r" % (status, body[:80])
    if status >= 400:
        err = doc.get("error") if isinstance(doc, dict) else None
        if not (isinstance(err, dict) and isinstance(err.get("code"), str) and isinstance(err.get("message"), str)
                and (err.get("field") is None or isinstance(err.get("field"), str))):
            return "a %d without {error: {code, message, field}}" % status
        if kind in ("valid", "valid_batch"):
            return "a valid user refused: %s" % err["message"]
        return None
    if path.startswith("/v1/predict"):
        preds = doc.get("predictions", [doc]) if isinstance(doc, dict) else None
        if not preds or ("n" in doc and doc["n"] != len(preds)):
            return "a batch answer whose n does not match"
        for p in preds:
            ltv = p.get("ltv", {})
            values = [ltv[h] for h in sorted(ltv, key=int)]
            if not isinstance(p.get("model_version"), int) or not values:
                return "a prediction without model_version or ltv"
            if any(not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 for v in values):
                return "a prediction with an ltv that is not a finite number >= 0"
            if any(b < a for a, b in zip(values, values[1:])):
                return "ltv not monotone across horizons"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--app", required=True, help="an app the model was trained on")
    ap.add_argument("--count", type=int, default=10000, help="bodies to send (default 10000)")
    ap.add_argument("--seconds", type=float, default=600, help="stop after this long (default 600)")
    ap.add_argument("--timeout", type=float, default=10, help="an answer later than this is a hang")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        ap.error("--url must be http://HOST:PORT")
    rng = random.Random(args.seed)
    conn = None
    counts = {"200": 0, "4xx": 0}
    failures = []
    started = time.monotonic()
    sent = 0
    while sent < args.count and time.monotonic() - started < args.seconds:
        method, path, ctype, body, kind = make_request(rng, args.app)
        sent += 1
        if conn is None:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
        headers = {"Content-Type": ctype} if ctype else {}
        try:
            conn.request(method, path, body=body if method != "GET" else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except TimeoutError:
            failures.append("#%d %s %s (%s): no answer within %g s" % (sent, method, path, kind, args.timeout))
            conn.close()
            conn = None
            continue
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            # The server may close a connection it refused a body on (413); a
            # fresh connection must then work, else the server is gone.
            conn.close()
            conn = None
            try:
                probe = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
                probe.request("GET", "/health")
                ok = probe.getresponse().status == 200
                probe.close()
            except OSError:
                ok = False
            if not ok:
                failures.append("#%d %s %s (%s): server gone after %r" % (sent, method, path, kind, e))
                break
            counts["4xx"] += 1
            continue
        why = check(kind, path, resp.status, data)
        if why:
            failures.append("#%d %s %s (%s): %s; body %r" % (sent, method, path, kind, why, body[:120]))
        counts["200" if resp.status < 400 else "4xx"] += 1
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = None
    print("%d bodies in %.0f s: %d answered 200, %d answered 4xx, %d failures (5xx, hangs, crashes, bad answers)"
          % (sent, time.monotonic() - started, counts["200"], counts["4xx"], len(failures)))
    for f in failures[:20]:
        print("  " + f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
