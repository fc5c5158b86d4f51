"""The one image reader: confined, regular files only, bounded in bytes, pixels and memory."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pytest
from PIL import Image

from monitor.images import (
    ImageAccess,
    ImageProblem,
    inspect_image,
    locate,
    read_file,
    read_image,
    reduction_factor,
)
from tests.support.hostile import png_claiming, write_png_claiming
from tests.support.paths import REPO

LOCAL = fsspec.filesystem("file")


def _png(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def log_root(tmp_path: Path) -> Path:
    root = tmp_path / "log"
    _png(root / "images" / "a.png", 8, 6)
    return root


def _reason(result: object) -> str:
    assert isinstance(result, ImageProblem), result
    return result.reason.value


def test_references_resolve_inside_the_log_folder(log_root: Path, tmp_path: Path) -> None:
    outside = _png(tmp_path / "secret.png", 8, 6)
    (log_root / "images" / "link.png").symlink_to(outside)
    (log_root / "images" / "inner.png").symlink_to(log_root / "images" / "a.png")
    access = ImageAccess()
    root = str(log_root)
    assert locate(LOCAL, root, "images/a.png", access) == str(log_root / "images" / "a.png")
    # a symbolic link inside the folder is fine; it resolves to the real file
    assert locate(LOCAL, root, "images/inner.png", access) == str(log_root / "images" / "a.png")
    for reference in ("../secret.png", str(outside), "images/link.png", "images/../../secret.png"):
        problem = locate(LOCAL, root, reference, access)
        assert _reason(problem) == "image_forbidden", reference
        assert str(outside) in problem.detail  # type: ignore[union-attr]
    allowed = ImageAccess(allowed_roots=(str(tmp_path),))
    assert locate(LOCAL, root, "../secret.png", allowed) == str(outside)


def test_only_regular_files_are_read(log_root: Path) -> None:
    fifo = log_root / "images" / "fifo.png"
    os.mkfifo(fifo)
    access = ImageAccess()
    assert "a FIFO" in read_file(LOCAL, str(fifo), access).detail  # type: ignore[union-attr]
    assert "a character device" in read_file(LOCAL, "/dev/zero", access).detail  # type: ignore[union-attr]
    assert "a directory" in read_file(LOCAL, str(log_root), access).detail  # type: ignore[union-attr]
    for path in (fifo, Path("/dev/zero"), log_root):
        assert _reason(read_file(LOCAL, str(path), access)) == "image_forbidden"


def test_a_fifo_never_blocks_the_reader(log_root: Path) -> None:
    """Run in a child with a bound: a blocking open would hang it, not the test run."""
    fifo = log_root / "images" / "pipe.png"
    os.mkfifo(fifo)
    script = (
        "import sys; from monitor.images import read_image; "
        "print(read_image(sys.argv[1]).reason.value)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(fifo)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "image_forbidden"


def test_reads_are_capped_in_bytes(log_root: Path) -> None:
    path = log_root / "images" / "a.png"
    size = path.stat().st_size
    assert isinstance(read_file(LOCAL, str(path), ImageAccess(max_bytes=size)), bytes)
    problem = read_file(LOCAL, str(path), ImageAccess(max_bytes=size - 1))
    assert _reason(problem) == "image_too_large"
    assert f"{size} bytes, more than {size - 1}" in problem.detail  # type: ignore[union-attr]


def test_the_pixel_cap_reads_only_the_header() -> None:
    """A 30000 x 30000 PNG (header only, a few hundred bytes) is refused before decoding."""
    data = png_claiming(30000, 30000)
    assert len(data) < 1000
    problem = inspect_image(data, ImageAccess(), "huge.png", verify=True)
    assert _reason(problem) == "image_too_large"
    assert "900000000 pixels" in problem.detail  # type: ignore[union-attr]
    below_pil_guard = inspect_image(
        png_claiming(10000, 8000), ImageAccess(), "big.png", verify=True
    )
    assert _reason(below_pil_guard) == "image_too_large"
    assert below_pil_guard.detail == (  # type: ignore[union-attr]
        "image 'big.png' is 10000x8000 = 80000000 pixels, more than 50000000"
    )


def test_pil_decompression_bomb_guard_is_image_too_large() -> None:
    """With a cap above PIL's own guard, PIL's DecompressionBombError is caught too."""
    problem = inspect_image(
        png_claiming(30000, 30000), ImageAccess(max_pixels=2**31 - 1), "x", verify=False
    )
    assert _reason(problem) == "image_too_large"
    assert "decompression bomb" in problem.detail.lower()  # type: ignore[union-attr]


def test_read_image_refuses_a_large_image_swapped_in(log_root: Path) -> None:
    path = write_png_claiming(log_root / "images" / "a.png", 30000, 30000)
    assert _reason(read_image(str(path), 6, 8)) == "image_too_large"


def test_read_image_refuses_a_symlink_swapped_in_after_ingest(
    log_root: Path, tmp_path: Path
) -> None:
    stored = log_root / "images" / "a.png"
    outside = _png(tmp_path / "elsewhere.png", 8, 6)
    stored.unlink()
    stored.symlink_to(outside)
    problem = read_image(str(stored), 6, 8)
    assert _reason(problem) == "image_forbidden"
    assert "symbolic link" in problem.detail  # type: ignore[union-attr]


def test_large_images_are_shrunk_to_the_bound(tmp_path: Path) -> None:
    path = _png(tmp_path / "big.png", 1000, 600)
    pixels = read_image(str(path), 600, 1000, max_side=256)
    assert isinstance(pixels, np.ndarray)
    assert reduction_factor(600, 1000, 256) == 4
    assert pixels.shape == (150, 250, 3)
    full = read_image(str(path), 600, 1000)
    assert isinstance(full, np.ndarray) and full.shape == (600, 1000, 3)
    # box-filtered: each pixel is the mean of its 4 x 4 block
    block = full[:4, :4].reshape(-1, 3).mean(axis=0)
    assert np.abs(pixels[0, 0].astype(float) - block).max() <= 1.0


def test_memory_of_one_image_is_bounded_by_the_model_input(tmp_path: Path) -> None:
    """A 6000 x 6000 image read for a 256-px model yields a 1000 x 1000 array, not 36 MP."""
    buffer = io.BytesIO()
    Image.new("RGB", (6000, 6000), (10, 20, 30)).save(buffer, "JPEG", quality=50)
    path = tmp_path / "large.jpg"
    path.write_bytes(buffer.getvalue())
    pixels = read_image(str(path), 6000, 6000, max_side=4 * 256)
    assert isinstance(pixels, np.ndarray)
    assert pixels.shape == (1000, 1000, 3) and pixels.nbytes == 3_000_000
