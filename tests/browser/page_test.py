#!/usr/bin/env python3
"""Drives the page of a running `ltvpipe serve` in headless Chromium.

Speaks the DevTools protocol over --remote-debugging-pipe (JSON messages
ending in NUL on file descriptors 3 and 4), so it needs neither npm nor a
websocket library. Opens the page, fills the prediction form with the
values given, submits it, reads the answer the page shows, opens the Models
tab and counts its rows, saves a screenshot of each tab, and prints what the
page showed as one JSON object. Exits 1 when the page does not answer within
--timeout seconds, 2 on bad usage. Standard library only.
"""
import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-pipe", "--window-size=1100,900",
]


class Browser:
    def __init__(self, binary, timeout):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="ltv-chromium-")
        to_child_r, self.to_child_w = os.pipe()
        self.from_child_r, from_child_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4. Both are
        # copied out of the way first, in case a pipe end already is 3 or 4;
        # every other pipe end is close-on-exec (Python's default).
        def fds():
            r, w = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(r, 3)
            os.dup2(w, 4)
        self.proc = subprocess.Popen(
            [binary] + CHROMIUM_FLAGS + ["--user-data-dir=" + self.profile, "about:blank"],
            preexec_fn=fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:  # already gone: the kill below is enough
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no message from Chromium in time")
            ready, _, _ = select.select([self.from_child_r], [], [], 0.2)
            if ready:
                chunk = os.read(self.from_child_r, 65536)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe (did it start?)")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, session):
        deadline = time.monotonic() + self.timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the server's page, e.g. http://127.0.0.1:8080/")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a form field to fill (repeatable): app, campaign, age_days, rev_window, ...;"
                         " none: only the Models tab is opened and shot")
    ap.add_argument("--screenshot", required=True, help="PNG of the answer; the Models tab goes beside it")
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    fields = {}
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq:
            ap.error("--set %s: expected FIELD=VALUE" % item)
        fields[name] = value
    binary = shutil.which(args.chromium)
    if not binary:
        print("page_test: %s not found; apt-get install chromium" % args.chromium, file=sys.stderr)
        return 2
    b = Browser(binary, args.timeout)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.send("Page.enable", session=session)
        b.send("Runtime.enable", session=session)
        b.send("Page.navigate", {"url": args.url}, session=session)
        b.wait_event("Page.loadEventFired", session)

        def js(expr):
            r = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                            "awaitPromise": True}, session=session)
            if "exceptionDetails" in r:
                raise RuntimeError("page script failed: %s" % r["exceptionDetails"].get("text"))
            return r["result"].get("value")

        shown = {}
        deadline = time.monotonic() + args.timeout
        if not fields:  # the Models tab alone
            js("document.body.dataset.answered = 'skipped'; true")
        fill = ";".join("document.getElementById(%s).value = %s" % (json.dumps(k), json.dumps(v))
                        for k, v in fields.items())
        if fields:
            js(fill + "; document.getElementById('go').click(); true")
        while fields and not js("document.body.dataset.answered || document.getElementById('error').textContent"):
            if time.monotonic() > deadline:
                raise TimeoutError("the page showed no answer")
            time.sleep(0.1)
        shown = {} if not fields else js("""(() => {
            const t = (id) => document.getElementById(id).textContent;
            const ltv = {}, roas = {};
            for (const tr of document.querySelectorAll('#ltv tbody tr')) {
                ltv[tr.cells[0].textContent] = tr.cells[1].textContent;
                roas[tr.cells[0].textContent] = tr.cells[3].textContent;
            }
            return { error: t('error'), segment: t('segment'), tier: t('tier'), method: t('method'),
                     p_payer: t('p_payer'), model_version: t('model_version'), ltv, roas };
        })()""")
        if fields:
            shot = b.send("Page.captureScreenshot", {"format": "png"}, session=session)
            with open(args.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        js("document.body.dataset.models = ''; document.getElementById('tab-models').click(); true")
        while not js("document.body.dataset.models === 'loaded' && "
                     "document.querySelectorAll('#versions tbody tr').length"):
            if time.monotonic() > deadline:
                raise TimeoutError("the Models tab listed no versions")
            time.sleep(0.1)
        shown.update(js("""(() => {
            const q = (sel) => document.querySelectorAll(sel);
            const bars = (sel) => Array.from(q(sel + ' svg.chart')).map((s) => s.querySelectorAll('rect.bar').length);
            return {
                model_rows: q('#versions tbody tr').length,
                version_columns: Array.from(q('#versions thead th')).map((th) => th.textContent).filter((t) => t),
                history_rows: q('#history tbody tr').length,
                served: document.getElementById('served').textContent,
                promote_buttons: q('#versions button.promote').length,
                rollback_shown: !document.getElementById('moves').hidden,
                evaluation_charts: bars('#evaluation'),
                evaluation_titles: Array.from(q('#evaluation svg.chart > title')).map((t) => t.textContent),
                drift_status: (document.getElementById('drift-status') || {}).textContent || '',
                drift_charts: bars('#drift'),
                calibration_rows: q('#calibration tbody tr').length,
                models_error: document.getElementById('models-error').textContent,
                external: Array.from(q('script[src],link[href],img[src]')).length,
            };
        })()"""))
        metrics = b.send("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = b.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}},
            session=session)
        root, ext = os.path.splitext(args.screenshot)
        with open(root + "-models" + ext, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    except (TimeoutError, RuntimeError) as e:
        print("page_test: %s" % e, file=sys.stderr)
        return 1
    finally:
        b.close()
    print(json.dumps(shown, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
