"""check_image / open_image on generated good and bad images."""

from __future__ import annotations

import hashlib
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from catalog_fakes import corrupt_png, huge_png, png_header_only, truncated_jpeg, write_image
from PIL import Image, ImageFile

from samestyle.catalog.images import DEFAULT_MAX_PIXELS, ImageCheck, ImageError, check_image, open_image
from samestyle.errors import SamestyleError
from samestyle.types import ImageStatus

BOMB_WARNING = "ignore::PIL.Image.DecompressionBombWarning"


def test_ok_image_has_sha256_and_size(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.jpg", fmt="JPEG", size=(60, 80))
    check = check_image(path)
    assert check == ImageCheck(ImageStatus.OK, hashlib.sha256(path.read_bytes()).hexdigest(), None, 60, 80)
    assert DEFAULT_MAX_PIXELS == 50_000_000


def _bad_image(kind: str, folder: Path) -> Path:
    """One bad input per kind, written under ``folder``."""
    if kind == "missing":
        return folder / "nope.jpg"
    if kind == "folder":
        return folder
    if kind == "zero-byte":
        (folder / "empty.jpg").write_bytes(b"")
        return folder / "empty.jpg"
    if kind == "text-as-jpg":
        (folder / "x.jpg").write_text("hello, I am text")
        return folder / "x.jpg"
    if kind == "truncated-jpeg":
        return truncated_jpeg(folder / "t.jpg")
    if kind == "corrupt-png":
        return corrupt_png(folder / "c.png")
    return png_header_only(folder / "h.png", 100, 100)  # right header, no pixel data


@pytest.mark.parametrize(
    ("kind", "status", "words"),
    [
        ("missing", ImageStatus.MISSING, "not found"),
        ("folder", ImageStatus.MISSING, "folder"),
        ("zero-byte", ImageStatus.CORRUPT, "0 bytes"),
        ("truncated-jpeg", ImageStatus.CORRUPT, "truncated"),
        ("corrupt-png", ImageStatus.CORRUPT, "corrupt"),
        ("text-as-jpg", ImageStatus.CORRUPT, "not an image"),
        ("no-pixel-data", ImageStatus.CORRUPT, "truncated"),
    ],
)
def test_bad_images_never_raise(tmp_path: Path, kind: str, status: ImageStatus, words: str) -> None:
    path = _bad_image(kind, tmp_path)
    check = check_image(path)
    assert check.status is status
    assert check.sha256 is None
    assert words in (check.reason or "") and str(path) in (check.reason or "")
    with pytest.raises(ImageError, match=words) as err:
        open_image(path)
    assert err.value.status is status
    assert isinstance(err.value, SamestyleError)


@pytest.mark.filterwarnings(BOMB_WARNING)
def test_huge_image_is_too_large_without_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = huge_png(tmp_path / "huge.png")  # 12000 x 9000 = 108 MP, ~100 KB on disk
    assert path.stat().st_size < 1_000_000

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("a too-large image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    start = time.perf_counter()
    check = check_image(path)
    assert time.perf_counter() - start < 0.5
    assert (check.status, check.width, check.height, check.sha256) == (
        ImageStatus.TOO_LARGE,
        12000,
        9000,
        None,
    )
    assert "108,000,000 pixels" in (check.reason or "")
    with pytest.raises(ImageError) as err:
        open_image(path)
    assert err.value.status is ImageStatus.TOO_LARGE


def test_max_pixels_is_checked_on_the_header(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", size=(100, 100))
    assert check_image(path, max_pixels=9_999).status is ImageStatus.TOO_LARGE
    assert check_image(path, max_pixels=10_000).status is ImageStatus.OK


def test_pillow_bomb_error_maps_to_too_large(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bomb.png", 60_000, 60_000)  # over Pillow's own hard limit
    check = check_image(path, max_pixels=10**12)
    assert check.status is ImageStatus.TOO_LARGE
    assert "decompression bomb" in (check.reason or "")


def test_pillow_bomb_warning_maps_to_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    path = write_image(tmp_path / "a.png", size=(30, 50))  # 1 500 px: Pillow warns (over 1 000, under 2 000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert check_image(path, max_pixels=10**9).status is ImageStatus.TOO_LARGE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert check_image(path, max_pixels=10**9).status is ImageStatus.TOO_LARGE  # min of both limits


def test_png_named_jpg_is_fine(tmp_path: Path) -> None:
    path = write_image(tmp_path / "really_a_png.jpg", fmt="PNG")
    assert check_image(path).status is ImageStatus.OK
    assert open_image(path).mode == "RGB"


def test_unsupported_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    check = check_image(path)
    assert check.status is ImageStatus.CORRUPT and "supported format" in (check.reason or "")


@pytest.mark.parametrize(
    ("mode", "fmt", "extra", "pixel"),
    [
        ("RGB", "JPEG", {}, None),
        ("1", "PNG", {}, (255, 255, 255)),
        ("L", "PNG", {}, (128, 128, 128)),
        ("P", "PNG", {}, (10, 200, 30)),
        ("P", "PNG", {"transparency": 3}, (255, 255, 255)),  # transparent palette entry -> white
        ("I;16", "PNG", {}, (156, 156, 156)),  # 40000 / 257, not clipped to 255
        ("I", "TIFF", {}, (156, 156, 156)),
        ("F", "TIFF", {}, (128, 128, 128)),
        ("CMYK", "JPEG", {}, None),
        ("CMYK", "TIFF", {}, (255, 0, 0)),
        ("RGBA", "PNG", {}, (255, 255, 255)),  # fully transparent red -> white
        ("LA", "PNG", {}, (255, 255, 255)),
        ("RGBA", "WEBP", {"lossless": True}, (255, 255, 255)),
    ],
)
def test_every_mode_opens_as_rgb(
    tmp_path: Path, mode: str, fmt: str, extra: dict[str, Any], pixel: tuple[int, int, int] | None
) -> None:
    path = write_image(tmp_path / f"img.{fmt.lower()}", mode, fmt=fmt, **extra)
    assert check_image(path).status is ImageStatus.OK
    im = open_image(path)
    assert (im.mode, im.size) == ("RGB", (8, 6))
    if pixel is not None:
        assert im.getpixel((0, 0)) == pixel


def test_half_transparent_pixels_blend_on_white(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", "RGBA", color=(0, 0, 0, 128))
    r, g, b = open_image(path).getpixel((0, 0))  # type: ignore[misc]
    assert r == g == b and 120 <= r <= 135


def test_pa_mode_is_composited(tmp_path: Path) -> None:
    from samestyle.catalog.images import _to_rgb

    im = Image.new("PA", (2, 2), (3, 255))
    im.putpalette([0, 0, 0] * 3 + [10, 200, 30] + [0, 0, 0] * 252)
    assert _to_rgb(im).getpixel((0, 0)) == (10, 200, 30)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = write_image(tmp_path / "rot.jpg", size=(8, 6), fmt="JPEG", exif=exif.tobytes())
    with Image.open(path) as raw:
        assert raw.size == (8, 6)
    assert open_image(path).size == (6, 8)


def test_threads_agree_with_serial(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"{i}.png", size=(5 + i, 7)) for i in range(20)]
    paths += [truncated_jpeg(tmp_path / "t.jpg"), tmp_path / "missing.jpg", corrupt_png(tmp_path / "c.png")]
    serial = [check_image(p) for p in paths]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(check_image, paths * 3)) == serial * 3
