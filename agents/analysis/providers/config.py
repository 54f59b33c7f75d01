"""Settings of the optional external providers, and building the ones an upload asks for.

Every field reads from the environment with the ``VIP_`` prefix (``VIP_VILA_BASE_URL``).
Nothing here connects at import time; clients are built by :func:`build_providers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from pydantic import SecretStr

from agents.analysis.providers.base import Provider, ProviderRejected
from vip.settings import Settings

__all__ = ["KNOWN_PROVIDERS", "LOCAL", "ProviderSettings", "build_providers"]

LOCAL: Final = "local"
KNOWN_PROVIDERS: Final = (LOCAL, "rekognition", "vila")


# The provider fields live on the one Settings object; the alias keeps this module's name
# for what it configures.
ProviderSettings = Settings


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


_NOT_CONFIGURED: Final = {
    "rekognition": "provider 'rekognition' is not configured: set VIP_AWS_REGION and "
    "VIP_AWS_ACCESS_KEY_ID/VIP_AWS_SECRET_ACCESS_KEY (or VIP_AWS_USE_DEFAULT_CREDENTIALS=true)",
    "vila": "provider 'vila' is not configured: set VIP_VILA_BASE_URL",
}


def _rekognition(settings: ProviderSettings) -> Provider:
    from agents.analysis.providers.rekognition import (
        RekognitionProvider,
        create_rekognition_client,
    )

    if not settings.rekognition_enabled or settings.aws_region is None:
        raise ProviderRejected(_NOT_CONFIGURED["rekognition"])
    endpoint = settings.rekognition_endpoint_url
    client: Any = create_rekognition_client(
        settings.aws_region,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=_secret(settings.aws_secret_access_key),
        session_token=_secret(settings.aws_session_token),
        endpoint_url=str(endpoint) if endpoint is not None else None,
        read_timeout_s=settings.rekognition_timeout_s,
    )
    return RekognitionProvider(client, min_confidence=settings.rekognition_min_confidence)


def _vila(settings: ProviderSettings) -> Provider:
    from agents.analysis.providers.vila import VilaProvider

    if settings.vila_base_url is None:
        raise ProviderRejected(_NOT_CONFIGURED["vila"])
    return VilaProvider(
        str(settings.vila_base_url),
        model=settings.vila_model,
        api_key=settings.vila_api_key,
        timeout_s=settings.vila_timeout_s,
        connect_timeout_s=settings.vila_connect_timeout_s,
        max_tokens=settings.vila_max_tokens,
    )


def build_providers(
    names: Sequence[str], settings: ProviderSettings, check_only: bool = False
) -> list[Provider]:
    """The external providers an upload asked for, in order, each once.

    ``"local"`` (our Triton models) is run by the analysis stage itself and is skipped here.
    An unknown or unconfigured name raises :class:`ProviderRejected` before any is built;
    ``check_only`` stops there (what ``vip upload`` uses to refuse an upload up front).
    """
    wanted = [n for n in dict.fromkeys(name.strip().lower() for name in names) if n != LOCAL]
    configured = {"rekognition": settings.rekognition_enabled, "vila": settings.vila_enabled}
    for name in wanted:
        if name not in configured:
            raise ProviderRejected(
                f"unknown provider {name!r}; known: {', '.join(KNOWN_PROVIDERS)}"
            )
        if not configured[name]:
            raise ProviderRejected(_NOT_CONFIGURED[name])
    if check_only:
        return []
    builders = {"rekognition": _rekognition, "vila": _vila}
    return [builders[name](settings) for name in wanted]
