#!/usr/bin/env python3
"""Opens a self-contained report page in headless Chromium and reads what it draws.

Loads FILE (file://), waits for it, saves a full-page screenshot, and prints
one JSON object: the page's title, every campaign chart's data attributes
and what it drew (curve points, a band, a cost line, a payback marker), the
rows of its tables, the segment bars, the opening sentence (#headline), the
campaign tables (table.campaigns) and the notes on thin campaign metrics, and
the resources it asked the network for (must be none). Standard library only;
drives Chromium through devtools.py.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devtools import drive, evaluate, open_page, save_full_page  # noqa: E402


READ = """(() => {
    const q = (sel) => Array.from(document.querySelectorAll(sel));
    const charts = q('svg.campaign').map((s) => {
        const d = Object.assign({}, s.dataset);
        d.section = s.parentElement.id;
        d.curve_points = (s.querySelector('polyline.curve') || { getAttribute: () => '' })
            .getAttribute('points').trim().split(/\\s+/).filter((p) => p).length;
        d.band = !!s.querySelector('polygon.band');
        d.cost_line = !!s.querySelector('line.cost');
        d.payback_marker = !!s.querySelector('circle.payback');
        d.width = s.getBoundingClientRect().width;
        return d;
    });
    const rows = (id) => q('#' + id + ' tbody tr').map((tr) => Array.from(tr.cells).map((c) => c.textContent));
    return {
        title: document.title,
        headline: (document.getElementById('headline') || {}).textContent || '',
        charts,
        top_table: rows('top-table'),
        bottom_table: rows('bottom-table'),
        totals: rows('totals'),
        segments: q('rect.segment').map((r) => [r.dataset.segment, Number(r.dataset.users)]),
        campaign_rows: q('table.campaigns tr').filter((tr) => tr.querySelector('td'))
            .map((tr) => Array.from(tr.cells).map((c) => c.textContent)),
        few_campaign_notes: q('.few-campaigns').map((p) => p.textContent),
        thin_cells: q('td.thin').length,
        tables: q('table').map((t) => t.id || t.className || 'table').length,
        svg_count: q('svg').length,
    };
})()"""


def read(b, path, screenshot):
    """What the report at path draws, its network requests; a screenshot into screenshot."""
    session = open_page(b, "file://" + os.path.abspath(path), network=True)
    shown = evaluate(b, session, READ)
    shown["requests"] = sorted({ev["params"]["request"]["url"] for ev in b.events
                                if ev.get("method") == "Network.requestWillBeSent"
                                and not ev["params"]["request"]["url"].startswith("file://")})
    save_full_page(b, session, screenshot)
    return shown


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="the HTML file")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--chromium", default="chromium")
    # generous: Chromium starting on a loaded 2-core machine can take tens of seconds
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    return drive("report_test", args.chromium, args.timeout, lambda b: read(b, args.file, args.screenshot))


if __name__ == "__main__":
    sys.exit(main())
