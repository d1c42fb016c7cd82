"""The catalogue as the service sees it: product details, the image store, and catalogue writes.

Images are only ever read from the catalogue's image store (``image_root``): a product's image path is
resolved (symlinks included) and must lie inside it, be a regular file and have an image suffix; anything
else is "no image" (404). Uploaded images are written into ``<image_root>/_uploads/``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from pathlib import Path

from PIL import Image

from samestyle.catalog.images import ImageError, open_image
from samestyle.catalog.store import REJECTS_FILE, Catalog, read_catalog, read_rejects, write_catalog
from samestyle.errors import ConfigError, NotFoundError
from samestyle.fsio import write_bytes
from samestyle.index.product_index import ProductIndex
from samestyle.types import Product

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
UPLOADS = "_uploads"
_FORMAT_SUFFIX = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ProductStore:
    """Product details and images from the catalogue folder (when known), else from the index metadata."""

    def __init__(self, catalog: Catalog | None, catalog_dir: Path | None) -> None:
        self.catalog = catalog
        self.catalog_dir = catalog_dir
        root = catalog.image_root if catalog is not None else None
        self.image_root = root.resolve() if root is not None else None
        self._by_id: dict[str, Product] = {p.id: p for p in catalog} if catalog is not None else {}

    @classmethod
    def open(cls, catalog_dir: Path | None) -> ProductStore:
        if catalog_dir is None:
            log.warning("no catalogue folder: results will have no images or descriptions")
            return cls(None, None)
        return cls(read_catalog(catalog_dir), Path(catalog_dir))

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._by_id

    def get(self, product_id: str, index: ProductIndex) -> Product:
        """The catalogue's product (with description and image), else the index's, else NotFoundError."""
        product = self._by_id.get(product_id)
        if product is not None:
            return product
        if product_id in index:
            return index.get_products([product_id])[0]
        raise NotFoundError(f"no product with id '{product_id}' in the catalogue")

    def has_image(self, product_id: str) -> bool:
        product = self._by_id.get(product_id)
        return product is not None and product.has_image and self.image_root is not None

    def image_file(self, product_id: str) -> Path:
        """The product's image file, guaranteed inside the image store; NotFoundError otherwise."""
        product = self._by_id.get(product_id)
        if product is None or self.catalog is None or self.image_root is None or not product.has_image:
            raise NotFoundError(f"product '{product_id}' has no image in the catalogue's image store")
        raw = self.catalog.image_path(product)
        try:
            path = raw.resolve(strict=True) if raw is not None else None
        except (OSError, RuntimeError):
            path = None
        if (
            path is None
            or not path.is_relative_to(self.image_root)
            or not path.is_file()
            or path.suffix.lower() not in IMAGE_SUFFIXES
        ):
            log.warning(
                "refused image of product %r: %s is not an image inside %s", product_id, raw, self.image_root
            )
            raise NotFoundError(f"product '{product_id}' has no image in the catalogue's image store")
        return path

    # ---- writes -----------------------------------------------------------------------------
    def _require_catalog(self) -> tuple[Catalog, Path]:
        if self.catalog is None or self.catalog_dir is None:
            raise ConfigError("catalogue writes need the catalogue folder: start the service with --catalog")
        return self.catalog, self.catalog_dir

    def require_writable(self) -> None:
        """ConfigError unless catalogue writes are possible (a catalogue folder is known)."""
        self._require_catalog()

    def save_image(self, product_id: str, data: bytes, image: Image.Image) -> str:
        """Save a checked upload (``decode_image``) into the image store; returns its relative path."""
        self._require_catalog()
        if self.image_root is None:
            raise ConfigError("this catalogue has no image root: images cannot be uploaded")
        with Image.open(io.BytesIO(data)) as header:  # header only: the format decides the suffix
            suffix = _FORMAT_SUFFIX.get(header.format or "")
        name = f"{_SAFE.sub('_', product_id)[:80]}-{hashlib.sha256(data).hexdigest()[:12]}"
        if suffix is None:  # a format we do not serve as is: keep the decoded pixels as PNG
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            data, suffix = buf.getvalue(), ".png"
        rel = f"{UPLOADS}/{name}{suffix}"
        write_bytes(self.image_root / rel, data)
        return rel

    def image_of(self, rel: str, max_pixels: int) -> Image.Image:
        """Open an image already in the store (a product's ``image`` path), refusing paths outside it."""
        self._require_catalog()
        if self.image_root is None:
            raise ConfigError("this catalogue has no image root")
        try:
            path = (self.image_root / rel).resolve(strict=True)
        except (OSError, RuntimeError):
            raise ConfigError(f"image '{rel}' is not in the catalogue's image store") from None
        if not path.is_relative_to(self.image_root) or not path.is_file():
            raise ConfigError(f"image '{rel}' is not in the catalogue's image store")
        return open_image(path, max_pixels)

    def put(self, product: Product) -> bool:
        """Add or replace a product in the catalogue view; True when it is new. Call :meth:`save` after."""
        catalog, _ = self._require_catalog()
        created = product.id not in self._by_id
        self._by_id[product.id] = product
        if created:
            catalog.products.append(product)
        else:
            catalog.products[catalog.position(product.id)] = product
        catalog.__post_init__()
        return created

    def delete(self, product_id: str) -> bool:
        catalog, _ = self._require_catalog()
        if self._by_id.pop(product_id, None) is None:
            return False
        catalog.products = [p for p in catalog.products if p.id != product_id]
        catalog.__post_init__()
        return True

    def save(self) -> None:
        """Rewrite the catalogue folder atomically (rejects and provenance kept)."""
        catalog, folder = self._require_catalog()
        rejects_path = folder / REJECTS_FILE
        rejects = read_rejects(rejects_path) if rejects_path.exists() else []
        write_catalog(folder, catalog.products, rejects, self.image_root, catalog.meta.get("source"))


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Bytes of an uploaded image -> RGB image, through ``catalog.images.open_image`` (pixel limit checked
    on the header, before decoding). Raises ``ImageError`` (CORRUPT / TOO_LARGE)."""
    import tempfile

    if not data:
        raise ConfigError("the uploaded image is empty (0 bytes)")
    with tempfile.NamedTemporaryFile(prefix="samestyle-upload-") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return open_image(tmp.name, max_pixels)
        except ImageError as exc:  # name the upload, not the temporary file
            raise ImageError(
                str(exc).replace(tmp.name, "uploaded image"), exc.status, exc.width, exc.height
            ) from None


__all__ = ["IMAGE_SUFFIXES", "UPLOADS", "ProductStore", "decode_image"]
