"""Opening product images safely: size guard before decoding, full decode check, any mode to RGB.

Two entry points:

* :func:`check_image` never raises for a bad image; it says what ingest found (an :class:`ImageCheck`).
* :func:`open_image` returns a decoded RGB image or raises :class:`ImageError`.

The pixel limit is checked on the header size *before* any pixel is decoded, so a decompression bomb
(a tiny file that claims 100 000 x 100 000 pixels) is never decoded. The effective limit is
``min(max_pixels, PIL.Image.MAX_IMAGE_PIXELS)``: anything Pillow itself would call a bomb (its
``DecompressionBombWarning`` threshold or its ``DecompressionBombError``) is ``TOO_LARGE`` too. No Pillow
global is changed here, so both functions are safe to call from many threads at once. Truncated files
are rejected as long as ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` keeps its default (False).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from samestyle.errors import SamestyleError
from samestyle.types import ImageStatus

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest width*height accepted by default (50 megapixels; a 60x80 thumbnail is 4 800)."""

# Raster formats a product image may come in. Others (EPS, which runs Ghostscript; WMF; FITS; ...) are
# refused as "not an image in a supported format" rather than handed to their decoders.
_WANTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "JPEG2000", "PPM", "ICO", "QOI")
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


class ImageError(SamestyleError):
    """An image cannot be used. ``status`` says why in one word (CORRUPT, TOO_LARGE, MISSING)."""

    def __init__(
        self,
        message: str,
        status: ImageStatus = ImageStatus.CORRUPT,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.width = width
        self.height = height


@dataclass(frozen=True)
class ImageCheck:
    """What :func:`check_image` found. ``sha256`` is set only when ``status`` is OK; ``reason`` only when
    it is not. ``width``/``height`` are the header size when the header could be read."""

    status: ImageStatus
    sha256: str | None
    reason: str | None
    width: int | None
    height: int | None


@functools.cache
def _formats() -> tuple[str, ...]:
    """The wanted formats this Pillow build can open (Pillow registers plugins lazily)."""
    Image.init()
    return tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)


def _pixel_limit(max_pixels: int) -> int:
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow_limit is None else min(max_pixels, int(pillow_limit))


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; ImageError MISSING if absent, CORRUPT if unreadable or empty."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"{path}: file not found", ImageStatus.MISSING) from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image file", ImageStatus.MISSING) from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise ImageError(f"{path}: empty file (0 bytes)")
    return data


def _open_header(data: bytes, path: Path, max_pixels: int) -> ImageFile.ImageFile:
    """Parse the header only and enforce the pixel limit; no pixel data is decoded yet."""
    try:
        im = Image.open(io.BytesIO(data), formats=_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        reason = f"{path}: too large, refused before decoding ({exc})"
        raise ImageError(reason, ImageStatus.TOO_LARGE) from None
    except Image.UnidentifiedImageError:
        names = ", ".join(_formats())
        raise ImageError(f"{path}: not an image in a supported format ({names})") from None
    except Exception as exc:  # Pillow raises many types for broken headers
        raise ImageError(f"{path}: unreadable image header ({type(exc).__name__}: {exc})") from None
    width, height = im.size
    limit = _pixel_limit(max_pixels)
    if width * height > limit:
        im.close()
        raise ImageError(
            f"{path}: {width}x{height} = {width * height:,} pixels is over the limit of {limit:,}; "
            "refused before decoding (raise max_pixels if the image is genuine)",
            ImageStatus.TOO_LARGE,
            width,
            height,
        )
    return im


def _decode(im: ImageFile.ImageFile, path: Path) -> None:
    """Decode every pixel of the first frame; a truncated or corrupt stream raises ImageError."""
    width, height = im.size
    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: too large ({exc})", ImageStatus.TOO_LARGE, width, height) from None
    except Exception as exc:  # OSError (truncated), SyntaxError, ValueError, struct.error, ...
        raise ImageError(
            f"{path}: corrupt or truncated image data ({type(exc).__name__}: {exc})",
            ImageStatus.CORRUPT,
            width,
            height,
        ) from None


def _load(path: Path, max_pixels: int) -> tuple[bytes, Image.Image]:
    """Read, size-check and fully decode ``path``. Returns the raw bytes and the decoded image."""
    data = _read_bytes(path)
    im = _open_header(data, path, max_pixels)
    try:
        _decode(im, path)
    except ImageError:
        im.close()
        raise
    return data, im


def check_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageCheck:
    """Say whether ``path`` is a usable image, without ever raising for a bad one.

    Args:
        path: the image file.
        max_pixels: largest accepted width*height, checked on the header before decoding.

    Returns:
        ``ImageCheck`` with status MISSING (no such file), CORRUPT (empty, not an image, truncated,
        undecodable), TOO_LARGE (over the pixel limit, never decoded) or OK (with the file's sha256).

    Example:
        >>> check_image("shoes/123.jpg").status  # doctest: +SKIP
        <ImageStatus.OK: 'ok'>
    """
    p = Path(path)
    try:
        data, im = _load(p, max_pixels)
    except ImageError as exc:
        return ImageCheck(exc.status, None, str(exc), exc.width, exc.height)
    width, height = im.size
    im.close()
    return ImageCheck(ImageStatus.OK, hashlib.sha256(data).hexdigest(), None, width, height)


def _sixteen_bit_to_l(im: Image.Image) -> Image.Image:
    """Scale a 16/32-bit integer or float greyscale image to 8-bit "L" (Pillow would clip instead)."""
    arr = np.asarray(im)
    if im.mode == "F":
        peak = float(arr.max()) if arr.size else 0.0
        scaled = arr * 255.0 if peak <= 1.0 else arr
    elif im.mode in _SIXTEEN_BIT_MODES or (arr.size and int(arr.max()) > 255):
        scaled = arr.astype(np.float64) / 257.0
    else:
        scaled = arr
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB; transparency is composited on white."""
    if im.mode in _SIXTEEN_BIT_MODES or im.mode in ("I", "F"):
        im = _sixteen_bit_to_l(im)
    has_alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def open_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open ``path`` as a fully decoded RGB image, EXIF orientation applied.

    Handles CMYK, palette, 1-bit, 16-bit greyscale and alpha modes (alpha composited on white). The
    pixel limit is enforced on the header before decoding.

    Raises:
        ImageError: the file is missing, unreadable, not an image, truncated, corrupt or too large;
            ``exc.status`` holds the matching :class:`ImageStatus`.
    """
    p = Path(path)
    _, im = _load(p, max_pixels)
    try:
        upright = ImageOps.exif_transpose(im)
    except Exception as exc:  # a broken EXIF block should not cost us the picture
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", p, exc)
        upright = im
    try:
        rgb = _to_rgb(upright)
    except Exception as exc:
        raise ImageError(f"{p}: cannot convert mode {upright.mode!r} to RGB ({exc})") from None
    if rgb is not im:
        im.close()
    return rgb


__all__ = ["DEFAULT_MAX_PIXELS", "ImageCheck", "ImageError", "check_image", "open_image"]
