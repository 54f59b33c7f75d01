"""Why a generator gave no draft. The answer service falls back to the extractive answer."""

from __future__ import annotations


class GeneratorError(Exception):
    """The root of every answer-generator error."""


class GeneratorUnavailable(GeneratorError):
    """The endpoint could not be reached, timed out or answered 408, 429 or 5xx."""


class GeneratorRejected(GeneratorError):
    """The endpoint refused the request (4xx) or answered something that is not a completion."""
