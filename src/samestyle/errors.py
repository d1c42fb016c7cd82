"""One exception base for every error a user can cause; the CLI prints these without a traceback."""

from __future__ import annotations


class SamestyleError(Exception):
    """Base of every error samestyle raises on purpose. The message says what, where and what to do."""


class CatalogError(SamestyleError):
    """A catalogue file cannot be read at all (a single bad row is a Reject, not an exception)."""


class ConfigError(SamestyleError):
    """A configuration value or CLI option is invalid."""


class UnknownComponentError(ConfigError):
    """A registry name is unknown; the message lists the known names and the closest match."""


class ArtifactError(SamestyleError):
    """An artifact on disk (catalogue, features, index, run) is missing, incomplete or of another version."""


class DatasetError(SamestyleError):
    """A public dataset archive is missing or malformed."""


class DependencyError(SamestyleError):
    """An optional dependency (torch, the weight packages, ...) is not installed."""


class NotFoundError(SamestyleError):
    """A product id, session or other named thing does not exist (HTTP maps it to 404)."""
