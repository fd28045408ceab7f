#!/usr/bin/env python3
"""Drives the page of a running `ltvpipe serve` in headless Chromium.

Drives Chromium through devtools.py (the DevTools protocol over a pipe).
Opens the page, fills the prediction form with the
values given, submits it, reads the answer the page shows, opens the Models
tab and counts its rows, saves a screenshot of each tab, and prints what the
page showed as one JSON object. Exits 1 when the page does not answer within
--timeout seconds, 2 on bad usage. Standard library only.
"""
import argparse
import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devtools import drive, evaluate, open_page, save_full_page  # noqa: E402


def read(b, args, fields):
    """What the page shows after the form is filled with fields, then on the Models tab."""
    session = open_page(b, args.url)

    def js(expr):
        return evaluate(b, session, expr, await_promise=True)

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
            calibration_new: Array.from(q('#calibration-new tbody tr')).map((tr) => Array.from(tr.cells).map((c) => c.textContent)),
            calibration_new_columns: Array.from(q('#calibration-new thead th')).map((th) => th.textContent),
            models_error: document.getElementById('models-error').textContent,
            external: Array.from(q('script[src],link[href],img[src]')).length,
        };
    })()"""))
    root, ext = os.path.splitext(args.screenshot)
    save_full_page(b, session, root + "-models" + ext)
    return shown


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the server's page, e.g. http://127.0.0.1:8080/")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a form field to fill (repeatable): app, campaign, age_days, rev_window, ...;"
                         " none: only the Models tab is opened and shot")
    ap.add_argument("--screenshot", required=True, help="PNG of the answer; the Models tab goes beside it")
    ap.add_argument("--chromium", default="chromium")
    # generous: Chromium starting on a loaded 2-core machine can take tens of seconds
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    fields = {}
    for item in args.set:
        name, eq, value = item.partition("=")
        if not eq:
            ap.error("--set %s: expected FIELD=VALUE" % item)
        fields[name] = value
    return drive("page_test", args.chromium, args.timeout, lambda b: read(b, args, fields))


if __name__ == "__main__":
    sys.exit(main())
