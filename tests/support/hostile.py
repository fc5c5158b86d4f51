"""Hostile inputs of issue 15: sample lines, images and files that once stalled or crashed.

Each line comes with the quarantine reason it must get. Images are generated cheaply: a
"30000 x 30000" PNG is a valid PNG header claiming that size in front of a few bytes
of pixel data, so no test ever decodes (or allocates) nine hundred million pixels.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from tests.support.samplelog import LogBuilder

NAME_MAX = os.pathconf("/", "PC_NAME_MAX") if hasattr(os, "pathconf") else 255


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header says ``width x height`` (1-bit grey); its data is short."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 64)  # far fewer rows than the header claims
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def hostile_lines(b: LogBuilder) -> dict[str, tuple[dict[str, Any] | str, str]]:
    """One line per hostile case of issue 15 (items 1 and 2), with its quarantine reason.

    Request ids run from ``r-000900``; lines whose request id itself is hostile are
    stored under their ``file@offset`` key.
    """
    size = [b.height, b.width]

    def with_instance(i: int, **changes: Any) -> dict[str, Any]:
        line = b.line(i)
        line["instances"][0].update(changes)
        return line

    (b.root / "s.jsonl").write_text("")  # an image path "through" a file
    nested = "[" * 100_000 + "]" * 100_000
    surrogate = json.dumps(b.line(903)).replace('"r-000903"', '"r-\\ud800"')
    nul = json.dumps(b.line(904)).replace('"r-000904"', '"r-\\u0000-904"')
    nul_version = json.dumps(b.line(905)).replace('"prod-2026.11.1"', '"prod\\u0000x"')
    return {
        "timestamp overflowing UTC": (
            b.line(900, captured_at="0001-01-01T00:00:00+01:00"),
            "invalid_timestamp",
        ),
        "image name of NAME_MAX+1": (
            b.line(901, image="images/" + "a" * (NAME_MAX + 1) + ".png"),
            "image_missing",
        ),
        "image path through a file": (b.line(902, image="s.jsonl/x.png"), "image_missing"),
        "lone surrogate in request_id": (surrogate, "invalid_record"),
        "NUL in request_id": (nul, "invalid_record"),
        "NUL in model_version": (nul_version, "invalid_record"),
        "300-character request_id": (b.line(906, request_id="r" * 300), "invalid_record"),
        "uncompressed RLE counts of 2**70": (
            with_instance(907, segmentation={"size": size, "counts": [2**70]}),
            "invalid_rle",
        ),
        "JSON nested 100,000 deep": (nested, "malformed_json"),
        "non-numeric polygon coordinates": (
            with_instance(908, segmentation=[[1, 1, "x", 1, 4, 4]]),
            "invalid_polygon",
        ),
        "non-numeric RLE size": (
            with_instance(909, segmentation={"size": ["h", "w"], "counts": "0"}),
            "invalid_rle",
        ),
        "polygon coordinates of 1e12": (
            with_instance(910, segmentation=[[0, 0, 1e12, 0, 1e12, 1e12]]),
            "invalid_polygon",
        ),
        "score beyond float range": (with_instance(911, score=10**400), "invalid_score"),
        "image size beyond the pixel cap": (
            b.line(912, n_instances=0, width=100_000, height=100_000),
            "image_too_large",
        ),
    }


def write_png_claiming(path: Path, width: int, height: int) -> Path:
    """Write :func:`png_claiming` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_claiming(width, height))
    return path
