"""The demo's outage: at the end of the drifted day, production stops returning masks.

Drift alone lowers the simulated model's quality (about 40 % of the shadow events go
bad on the demo's drifted day): enough for tickets, not for a page, which the default
SLOs keep for a real outage (at least 90 % bad over an hour and its last five minutes).
So the demo ends with one: for the last ``minutes`` of the day, requests arrive twice a
minute and the production model answers every one of them with no instances at all. The
reference model still sees the objects, so every one of its instances is a
``reference_only`` (bad) shadow event.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from monitor.errors import InvalidInputError
from monitor.synth import DriftKnob, SynthConfig, generate_scenes
from monitor.synth.writer import ANNOTATIONS_FILE, SAMPLES_FILE

__all__ = ["OUTAGE_FILE", "add_outage"]

OUTAGE_FILE = "outage.jsonl"


def add_outage(
    log_dir: Path,
    *,
    end: datetime,
    images: int,
    minutes: float,
    seed: int,
    drift: Mapping[DriftKnob, float] | None = None,
) -> int:
    """Add ``images`` requests answered with no instances over the ``minutes`` before ``end``.

    The images go to ``log_dir/images`` (request ids ``out-*``), their lines to
    ``log_dir/outage.jsonl``, beside the day's own log, so one ingest reads both. Their
    scenes carry the day's ``drift``: the world does not change because the model broke.
    Their true instances join the day's ``annotations.json`` (ids renumbered after the
    day's), so an annotator labelling them later finds what production missed.

    Returns
    -------
    int
        The number of lines written.
    """
    if images < 1 or minutes <= 0:
        raise InvalidInputError(
            f"an outage needs images >= 1 and minutes > 0, got {images}, {minutes}"
        )
    span = timedelta(minutes=minutes)
    scratch = log_dir / ".outage"
    generate_scenes(
        scratch,
        SynthConfig(
            n_images=images,
            seed=seed,
            start=end - span,
            interval_s=span.total_seconds() / images,
            request_prefix="out-",
            drift=dict(drift or {}),
        ),
    )
    (log_dir / "images").mkdir(exist_ok=True)
    lines = []
    for raw in (scratch / SAMPLES_FILE).read_text().splitlines():
        record = json.loads(raw)
        image = Path(record["image"])
        shutil.move(scratch / image, log_dir / "images" / image.name)
        record["image"] = f"images/{image.name}"
        record["instances"] = []  # the model is down: it answers, with nothing
        lines.append(json.dumps(record, separators=(",", ":")))
    (log_dir / OUTAGE_FILE).write_text("\n".join(lines) + "\n")
    _merge_truth(log_dir / ANNOTATIONS_FILE, scratch / ANNOTATIONS_FILE)
    shutil.rmtree(scratch)
    return len(lines)


def _merge_truth(day: Path, outage: Path) -> None:
    """Append the outage scenes' images and annotations to the day's COCO file."""
    extra = json.loads(outage.read_text())
    if not day.exists():
        shutil.copyfile(outage, day)
        return
    doc = json.loads(day.read_text())
    image_base = max((int(i["id"]) for i in doc["images"]), default=0)
    ann_base = max((int(a["id"]) for a in doc["annotations"]), default=0)
    doc["images"].extend({**i, "id": int(i["id"]) + image_base} for i in extra["images"])
    doc["annotations"].extend(
        {**a, "id": int(a["id"]) + ann_base, "image_id": int(a["image_id"]) + image_base}
        for a in extra["annotations"]
    )
    day.write_text(json.dumps(doc))
