"""Render one plot of a look-back report (``segmon report --from --to``) to a PNG.

The README's picture comes from the demo's report::

    segmon demo
    python docs/render_plot.py var/demo/report.html docs/lookback-slo.png --kind slo \
        --family mask-quality-shadow

Needs ``kaleido`` (the ``dev`` extra pins 0.2.1, which bundles its own browser and so
renders offline).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import plotly.io as pio

from monitor.service.lookback import read_figures


def main() -> None:
    """Pick the first figure matching ``--kind`` / ``--family`` / ``--class`` and render it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--kind", default="drift", help="drift, quality, shadow or slo")
    parser.add_argument("--family", default=None, help="drift family, or SLO name")
    parser.add_argument("--class", dest="class_name", default=None)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=None)
    args = parser.parse_args()
    for figure in read_figures(args.report.read_text(encoding="utf-8")):
        if figure.kind != args.kind:
            continue
        if args.family is not None and figure.family != args.family:
            continue
        if args.class_name is not None and figure.class_name != args.class_name:
            continue
        plot = pio.from_json(json.dumps(figure.spec))
        height = args.height or int(figure.spec["layout"].get("height", 450))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        plot.write_image(str(args.out), width=args.width, height=height, scale=1)
        print(f"wrote {args.out}: {figure.title}")
        return
    raise SystemExit(f"no {args.kind} figure matches in {args.report}")


if __name__ == "__main__":
    main()
