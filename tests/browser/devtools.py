"""Headless Chromium over the DevTools protocol, for the browser tests.

Shared by page_test.py (the page of `ltvpipe serve`) and report_test.py (the
self-contained HTML reports): finding Chromium, starting it with a
--remote-debugging-pipe (JSON messages ending in NUL on file descriptors 3
and 4, so neither npm nor a websocket library is needed), opening a page in
a new target and waiting for its load, evaluating a script, and a full-page
screenshot. Standard library only.
"""
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
            self.proc.wait(timeout=30)
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


def find_chromium(name, prog):
    """The Chromium binary's path, or None after saying how to install it."""
    binary = shutil.which(name)
    if not binary:
        print("%s: %s not found; apt-get install chromium" % (prog, name), file=sys.stderr)
    return binary


def open_page(b, url, network=False):
    """A new target attached to b, showing url once loaded; returns its session."""
    target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    b.send("Page.enable", session=session)
    b.send("Runtime.enable", session=session)
    if network:
        b.send("Network.enable", session=session)
    b.send("Page.navigate", {"url": url}, session=session)
    b.wait_event("Page.loadEventFired", session)
    return session


def evaluate(b, session, expr, await_promise=False):
    """The value of expr in the page; RuntimeError when the script throws."""
    params = {"expression": expr, "returnByValue": True}
    if await_promise:
        params["awaitPromise"] = True
    r = b.send("Runtime.evaluate", params, session=session)
    if "exceptionDetails" in r:
        raise RuntimeError("page script failed: %s" % r["exceptionDetails"].get("text"))
    return r["result"].get("value")


def save_full_page(b, session, path):
    """A PNG of the whole page (beyond the viewport) into path."""
    metrics = b.send("Page.getLayoutMetrics", session=session)
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = b.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}},
        session=session)
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def drive(prog, chromium, timeout, read):
    """Starts Chromium, prints read(browser) as one JSON object and closes it.

    Exit status: 0, 1 when the page does not answer in time or its script
    fails (said on stderr), 2 when Chromium is missing.
    """
    binary = find_chromium(chromium, prog)
    if not binary:
        return 2
    b = Browser(binary, timeout)
    try:
        shown = read(b)
    except (TimeoutError, RuntimeError) as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        return 1
    finally:
        b.close()
    print(json.dumps(shown, sort_keys=True))
    return 0
