"""Optional external analysis providers (Amazon Rekognition, a hosted VILA-style VLM).

An upload picks them with ``VideoUploaded.providers``; ``"local"`` means our Triton models.
The provider modules import boto3/httpx lazily through :func:`config.build_providers`.
"""

from agents.analysis.providers.base import (
    KeyframeImage,
    Provider,
    ProviderError,
    ProviderRejected,
    ProviderResult,
    ProviderUnavailable,
    merge_results,
)

__all__ = [
    "KeyframeImage",
    "Provider",
    "ProviderError",
    "ProviderRejected",
    "ProviderResult",
    "ProviderUnavailable",
    "merge_results",
]
