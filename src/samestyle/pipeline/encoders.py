"""Build the frozen encoders named on the command line (or 'none')."""

from __future__ import annotations

from samestyle.models import IMAGE_ENCODERS, TEXT_ENCODERS
from samestyle.models.base import ImageEncoder, TextEncoder


def build_encoders(
    image: str | None, text: str | None, threads: int | None = None
) -> tuple[ImageEncoder | None, TextEncoder | None]:
    """Registry names -> encoder objects; ``None`` or ``"none"`` skips that modality."""
    kwargs = {} if threads is None else {"num_threads": threads}
    image_enc = None if image in (None, "none") else IMAGE_ENCODERS.build(str(image), **kwargs)
    text_enc = None if text in (None, "none") else TEXT_ENCODERS.build(str(text), **kwargs)
    return image_enc, text_enc
