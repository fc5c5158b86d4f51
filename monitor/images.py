"""Images: find, read and decode them, confined and bounded, or say why they cannot be used.

The one image reader of segmon. Ingest locates and checks each image of a sample log
(:func:`locate`, :func:`read_file`, :func:`inspect_image`); every job that needs pixels
(embed, shadow, image properties, evaluate with a model) reads through
:func:`read_image`. None of them raises for bad data: they return an
:class:`ImageProblem` whose ``reason`` is a quarantine reason, so one bad file cannot
stop a job.

What an image reference may reach (:class:`ImageAccess`):

- **Confined**: a reference resolves inside the sample log's folder or one of the
  configured ``allowed_roots``; ``../``, absolute paths and symbolic links that lead
  elsewhere are refused (``image_forbidden``). Ingest stores the resolved path, so a
  later job reads that path without following a symbolic link swapped in since.
- **Regular files only**: FIFOs, devices and directories are refused
  (``image_forbidden``); a local file is opened non-blocking, so a FIFO never hangs.
- **Bounded**: at most ``max_bytes`` are read; an image whose header claims more than
  ``max_pixels`` pixels is refused before it is decoded (``image_too_large``), as is
  anything PIL's decompression-bomb guard stops.
- **Memory per image bounded by the model's input**: :func:`read_image` with
  ``max_side`` shrinks a larger image by an integer factor (:func:`reduction_factor`)
  right after decoding, so copies, tensors and masks downstream are at most about
  ``max_side`` square.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem
from PIL import Image

from detectors._typing import ImageArray
from monitor.errors import QuarantineReason
from monitor.limits import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS

__all__ = [
    "ImageAccess",
    "ImageInfo",
    "ImageProblem",
    "inspect_image",
    "locate",
    "read_file",
    "read_image",
    "reduction_factor",
    "rgb_from_bytes",
]


@dataclass(frozen=True)
class ImageProblem:
    """Why an image could not be used (``reason`` is a quarantine reason)."""

    reason: QuarantineReason
    detail: str


@dataclass(frozen=True)
class ImageAccess:
    """Where images may be read from, and how much of them.

    Attributes
    ----------
    allowed_roots
        Folders (or URL prefixes) image references may resolve into besides the sample
        log's own folder.
    max_bytes
        Largest image file read, in bytes.
    max_pixels
        Largest image decoded, in pixels (width x height, from the header).
    """

    allowed_roots: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class ImageInfo:
    """An image's size, read from its header (the pixels are decoded only to verify them)."""

    width: int
    height: int


_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def _inside(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root + "/") or root == "/"


def _real(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return os.path.realpath(path) if _is_local(fs) else posixpath.normpath(path)


def locate(
    fs: fsspec.AbstractFileSystem, root: str, reference: str, access: ImageAccess
) -> str | ImageProblem:
    """Resolve an image reference of a sample log, confined to its folder or the allow-list.

    Parameters
    ----------
    fs
        The sample log's file system.
    root
        The sample log's folder (references are relative to it).
    reference
        The line's ``image``: relative, absolute, or a URL.
    access
        The allow-list.

    Returns
    -------
    str or ImageProblem
        The resolved path in ``fs`` (symbolic links resolved, for local files), or an
        ``image_forbidden`` problem naming where it leads.

    Examples
    --------
    >>> fs = fsspec.filesystem("memory")
    >>> locate(fs, "/log", "images/a.png", ImageAccess())
    '/log/images/a.png'
    >>> locate(fs, "/log", "../etc/passwd", ImageAccess()).reason.value
    'image_forbidden'
    """
    if "\x00" in reference:
        return ImageProblem(QuarantineReason.IMAGE_FORBIDDEN, f"image {reference!r} holds a NUL")
    if "://" in reference:
        ref_fs, ref_path = fsspec.core.url_to_fs(reference)
        if type(ref_fs) is not type(fs):
            return ImageProblem(
                QuarantineReason.IMAGE_FORBIDDEN,
                f"image {reference!r} is on another file system than the log",
            )
        path = ref_path
    elif reference.startswith("/"):
        path = reference
    else:
        path = posixpath.join(root, reference)
    real = _real(fs, path)
    roots = [_real(fs, root), *(_real(fs, fs._strip_protocol(r)) for r in access.allowed_roots)]
    if not any(_inside(real, r) for r in roots):
        return ImageProblem(
            QuarantineReason.IMAGE_FORBIDDEN,
            f"image {reference!r} resolves to {real!r}, outside {roots[0]!r}"
            + (
                f" and the allowed roots {list(access.allowed_roots)}"
                if access.allowed_roots
                else ""
            ),
        )
    return real


def _read_local(path: str, access: ImageAccess, follow: bool) -> bytes | ImageProblem:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError) as exc:
        return ImageProblem(QuarantineReason.IMAGE_MISSING, f"image {path!r}: {exc.strerror}")
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # no such file can exist
            return ImageProblem(
                QuarantineReason.IMAGE_MISSING, f"image {path!r:.300}: {exc.strerror}"
            )
        if not follow and os.path.islink(path):
            return ImageProblem(
                QuarantineReason.IMAGE_FORBIDDEN,
                f"image {path!r} is now a symbolic link (to {os.path.realpath(path)!r})",
            )
        return ImageProblem(QuarantineReason.IMAGE_UNREADABLE, f"image {path!r}: {exc}")
    except ValueError as exc:  # an embedded NUL
        return ImageProblem(QuarantineReason.IMAGE_MISSING, f"image {path!r}: {exc}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return ImageProblem(
                QuarantineReason.IMAGE_FORBIDDEN,
                f"image {path!r} is not a regular file ({_kind(info.st_mode)})",
            )
        if info.st_size > access.max_bytes:
            return ImageProblem(
                QuarantineReason.IMAGE_TOO_LARGE,
                f"image {path!r} has {info.st_size} bytes, more than {access.max_bytes}",
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(access.max_bytes + 1)
    except OSError as exc:
        return ImageProblem(QuarantineReason.IMAGE_UNREADABLE, f"image {path!r}: {exc}")
    finally:
        os.close(fd)
    if len(data) > access.max_bytes:  # it grew while being read
        return ImageProblem(
            QuarantineReason.IMAGE_TOO_LARGE,
            f"image {path!r} has more than {access.max_bytes} bytes",
        )
    return data


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def _read_remote(
    fs: fsspec.AbstractFileSystem, path: str, access: ImageAccess
) -> bytes | ImageProblem:
    uri = str(fs.unstrip_protocol(path))
    try:
        info: dict[str, Any] = fs.info(path)
    except FileNotFoundError as exc:
        return ImageProblem(QuarantineReason.IMAGE_MISSING, f"image {uri!r}: {exc}")
    except OSError as exc:
        return ImageProblem(QuarantineReason.IMAGE_UNREADABLE, f"image {uri!r}: {exc}")
    if info.get("type") != "file":
        return ImageProblem(
            QuarantineReason.IMAGE_FORBIDDEN, f"image {uri!r} is not a file ({info.get('type')})"
        )
    size = info.get("size")
    if isinstance(size, int) and size > access.max_bytes:
        return ImageProblem(
            QuarantineReason.IMAGE_TOO_LARGE,
            f"image {uri!r} has {size} bytes, more than {access.max_bytes}",
        )
    try:
        with fs.open(path, "rb") as handle:
            data = bytes(handle.read(access.max_bytes + 1))
    except OSError as exc:
        return ImageProblem(QuarantineReason.IMAGE_UNREADABLE, f"image {uri!r}: {exc}")
    if len(data) > access.max_bytes:
        return ImageProblem(
            QuarantineReason.IMAGE_TOO_LARGE,
            f"image {uri!r} has more than {access.max_bytes} bytes",
        )
    return data


def read_file(
    fs: fsspec.AbstractFileSystem, path: str, access: ImageAccess, *, follow_symlinks: bool = True
) -> bytes | ImageProblem:
    """Read an image file, if it is a regular file of at most ``access.max_bytes``.

    A local file is opened non-blocking (a FIFO cannot hang the reader) and checked to
    be a regular file before a byte is read; ``follow_symlinks=False`` refuses a path
    whose last part is a symbolic link.

    Examples
    --------
    >>> read_file(fsspec.filesystem("file"), "/dev/zero", ImageAccess()).detail
    "image '/dev/zero' is not a regular file (a character device)"
    """
    if _is_local(fs):
        return _read_local(path, access, follow_symlinks)
    return _read_remote(fs, path, access)


def _header(data: bytes, access: ImageAccess, name: str) -> Image.Image | ImageProblem:
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        return ImageProblem(QuarantineReason.IMAGE_TOO_LARGE, f"image {name!r}: {exc}")
    except (OSError, SyntaxError, ValueError) as exc:
        return ImageProblem(QuarantineReason.IMAGE_UNREADABLE, f"image {name!r}: {exc}")
    width, height = img.size
    if width * height > access.max_pixels:
        img.close()
        return ImageProblem(
            QuarantineReason.IMAGE_TOO_LARGE,
            f"image {name!r} is {width}x{height} = {width * height} pixels, more than "
            f"{access.max_pixels}",
        )
    return img


def inspect_image(
    data: bytes, access: ImageAccess, name: str, *, verify: bool
) -> ImageInfo | ImageProblem:
    """Read an image's size from its header (pixel cap first), and verify it if asked.

    Examples
    --------
    >>> buffer = io.BytesIO(); Image.new("RGB", (20, 10)).save(buffer, "PNG")
    >>> inspect_image(buffer.getvalue(), ImageAccess(), "a.png", verify=True)
    ImageInfo(width=20, height=10)
    >>> inspect_image(buffer.getvalue(), ImageAccess(max_pixels=100), "a.png", verify=True).detail
    "image 'a.png' is 20x10 = 200 pixels, more than 100"
    """
    img = _header(data, access, name)
    if isinstance(img, ImageProblem):
        return img
    with img:
        width, height = img.size
        if verify:
            try:
                img.verify()
            except _DECODE_ERRORS as exc:
                return ImageProblem(QuarantineReason.IMAGE_UNREADABLE, f"image {name!r}: {exc}")
    return ImageInfo(width=width, height=height)


def rgb_from_bytes(data: bytes) -> ImageArray:
    """Decode an encoded image (PNG, JPEG, ...) as ``uint8`` RGB ``(h, w, 3)``.

    Raises whatever PIL raises for data that is not an image (``UnidentifiedImageError``,
    ``OSError``, ...). Unbounded: jobs read through :func:`read_image`.
    """
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def reduction_factor(height: int, width: int, max_side: int | None) -> int:
    """Return the integer factor :func:`read_image` shrinks an image by to fit ``max_side``.

    Examples
    --------
    >>> reduction_factor(768, 1024, None), reduction_factor(768, 1024, 1024)
    (1, 1)
    >>> reduction_factor(12000, 12000, 1024)
    12
    """
    if max_side is None or max(height, width) <= max_side:
        return 1
    return -(-max(height, width) // max_side)


def read_image(
    uri: str,
    height: int | None = None,
    width: int | None = None,
    *,
    access: ImageAccess | None = None,
    max_side: int | None = None,
    follow_symlinks: bool = False,
) -> ImageArray | ImageProblem:
    """Read a stored image as ``uint8`` RGB ``(h, w, 3)``, or say why it cannot be used.

    Parameters
    ----------
    uri
        A local path or any fsspec URL, as ingest or holdout import stored it (resolved:
        a symbolic link found there now is refused).
    height, width
        The size the database holds for it; another size is a problem. ``None`` (both)
        accepts any size.
    access
        Byte and pixel caps (defaults: :class:`ImageAccess`).
    max_side
        Shrink a larger image by :func:`reduction_factor` (the model's input size bounds
        the memory an image costs); masks must be shrunk by the same factor.
    follow_symlinks
        Follow a symbolic link at ``uri`` (for files a user names directly); stored
        paths are read without (ingest stored them resolved).

    Returns
    -------
    numpy.ndarray or ImageProblem
        The pixels, or an ``image_missing``, ``image_forbidden``, ``image_unreadable``,
        ``image_too_large`` or ``image_size_mismatch`` problem naming the file.

    Examples
    --------
    >>> read_image("/nonexistent/x.png").reason.value
    'image_missing'
    """
    access = access or ImageAccess()
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ValueError, ImportError) as exc:
        return ImageProblem(QuarantineReason.IMAGE_MISSING, f"image {uri!r}: {exc}")
    data = read_file(fs, path, access, follow_symlinks=follow_symlinks)
    if isinstance(data, ImageProblem):
        return data
    img = _header(data, access, uri)
    if isinstance(img, ImageProblem):
        return img
    with img:
        size = img.size
        if height is not None and width is not None and size != (width, height):
            return ImageProblem(
                QuarantineReason.IMAGE_SIZE_MISMATCH,
                f"image {uri!r} is {size[0]}x{size[1]}, stored as {width}x{height}",
            )
        factor = reduction_factor(size[1], size[0], max_side)
        try:
            return np.asarray(_shrunk_rgb(img, factor), dtype=np.uint8)
        except _DECODE_ERRORS as exc:
            return ImageProblem(QuarantineReason.IMAGE_UNREADABLE, f"image {uri!r}: {exc}")


def _shrunk_rgb(img: Image.Image, factor: int) -> Image.Image:
    """Shrink first where PIL can (no full-size RGB copy), then convert to RGB."""
    if factor > 1 and img.mode in ("RGB", "RGBA", "L", "LA"):
        img = img.reduce(factor)
        return img if img.mode == "RGB" else img.convert("RGB")
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return rgb.reduce(factor) if factor > 1 else rgb
