"""Where an uploaded video comes from: a local path or an ``s3://bucket/key`` URI.

Only those two forms are accepted: no http(s) or other schemes (no SSRF), and local paths are
resolved and, when roots are configured, must lie inside one of them (no path traversal).

A live feed's source (:func:`parse_live_source`) may also be an rtsp, rtmp or http(s) URL, but
only one whose host resolves to addresses the SSRF guard (:func:`address_problem`) allows, and
a local one only under the configured roots.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import re
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\x00]+)$")
HASH_CHUNK = 1 << 20


class SourceError(ValueError):
    """The upload source is invalid or cannot be read; the message says why."""


@dataclass(frozen=True)
class LocalSource:
    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class S3Source:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


Source = LocalSource | S3Source


def parse_source(raw: str, allowed_roots: Sequence[Path] = ()) -> Source:
    text = raw.strip()
    if not text:
        raise SourceError("empty source")
    if "://" in text:
        match = _S3.match(text)
        if match is None:
            scheme = text.split("://", 1)[0]
            if scheme == "s3":
                raise SourceError(f"malformed S3 URI {text!r}; expected s3://bucket/key")
            raise SourceError(
                f"unsupported source scheme {scheme!r}: give a local file path or s3://bucket/key"
            )
        return S3Source(match["bucket"], match["key"])
    path = Path(text).expanduser().resolve()
    if allowed_roots and not any(path.is_relative_to(r.resolve()) for r in allowed_roots):
        raise SourceError(f"{path} is outside the allowed upload roots")
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if not path.is_file():
        raise SourceError(f"{path}: not a regular file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return LocalSource(path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def local_copy(source: Source, s3_client: Any = None) -> Iterator[Path]:
    """A local path for the source's bytes: the file itself, or a temporary S3 download."""
    if isinstance(source, LocalSource):
        yield source.path
        return
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="vip-s3-") as tmp:
        target = Path(tmp) / Path(source.key).name
        try:
            s3_client.download_file(source.bucket, source.key, str(target))
        except Exception as exc:
            raise SourceError(f"{source}: download failed ({exc})") from exc
        yield target


# Live feeds (vip/feeds) read streams as well as files: the URL schemes a feed may use.
LIVE_URL_SCHEMES = frozenset({"rtsp", "rtmp", "http", "https"})
# Cloud metadata services outside link-local (169.254/16 and fe80::/10 are refused whole):
# AWS's IPv6 one and Alibaba's.
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class StreamUrl:
    """A live stream's URL whose host resolved, when checked, to addresses a feed may reach."""

    url: str
    scheme: str
    host: str

    def __str__(self) -> str:
        return self.url


LiveSource = StreamUrl | LocalSource
Resolver = Callable[[str], Sequence[str]]


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as FFmpeg uses it)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise SourceError(f"cannot resolve host {host!r} ({exc})") from exc
    return sorted({str(info[4][0]) for info in infos})


def address_problem(
    address: str,
    allow_private: bool = False,
    allow_loopback: bool = False,
    *,
    loopback_switch: str | None = "feed_sources_allow_loopback",
    private_switch: str | None = "feed_sources_allow_private",
) -> str | None:
    """Why the platform may not connect to ``address`` (a phrase after it), or None: the one
    SSRF guard of every outbound connection a user names (feed sources, alert webhooks).

    Link-local addresses (where cloud metadata services answer) and addresses that are not
    unicast are always refused; loopback and private ranges only when allowed. A refusal
    names the setting that would allow it (``*_switch``; None: no setting does)."""
    ip = unmapped(address)
    if ip.is_link_local or ip in _METADATA_ADDRESSES:
        return "is link-local or a cloud metadata address"
    if ip.is_loopback:  # before "reserved": ::1 lies in the reserved ::/8
        return None if allow_loopback else _refused("is loopback", loopback_switch)
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "is not a unicast address"
    if not ip.is_global:
        return None if allow_private else _refused("is private", private_switch)
    return None


def unmapped(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IP ``address`` names, an IPv4-mapped IPv6 address as its IPv4 address (a zone
    index dropped); raises ValueError for anything else."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _refused(phrase: str, switch: str | None) -> str:
    return phrase if switch is None else f"{phrase} (allowed by {switch})"


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def parse_live_source(
    raw: str,
    allowed_roots: Sequence[Path] = (),
    *,
    allow_private: bool = False,
    allow_loopback: bool = False,
    resolve: Resolver = resolve_host,
) -> LiveSource:
    """A live feed's source: an rtsp, rtmp or http(s) (HLS) URL whose host resolves only to
    addresses :func:`address_problem` lets through, or an absolute path to a readable file
    under one of ``allowed_roots`` (none configured: no file feeds). Refusals name the host,
    never the URL, which may carry credentials."""
    text = raw.strip()
    if not text:
        raise SourceError("empty source")
    if _CONTROL.search(text):
        raise SourceError("the source contains control characters")
    if "://" not in text:
        return _local_feed(text, allowed_roots)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in LIVE_URL_SCHEMES:
        raise SourceError(
            f"unsupported feed scheme {scheme!r}: give an rtsp, rtmp, http or https (HLS) URL "
            "or a local file path"
        )
    if " " in text:
        raise SourceError("a source URL must not contain spaces (percent-encode them)")
    host = parts.hostname
    if not host:
        raise SourceError(f"the {scheme} URL has no host")
    shown = f"{scheme}://[{host}]" if ":" in host else f"{scheme}://{host}"
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError as exc:
        raise SourceError(f"{shown}: invalid port") from exc
    literal = _ip_literal(host)
    addresses = [literal] if literal is not None else list(resolve(host))
    if not addresses:
        raise SourceError(f"cannot resolve host {host!r}")
    for address in addresses:
        problem = address_problem(address, allow_private, allow_loopback)
        if problem is not None:
            raise SourceError(f"{shown}: refused, {address} {problem}")
    return StreamUrl(text, scheme, host)


def _local_feed(text: str, allowed_roots: Sequence[Path]) -> LocalSource:
    if not Path(text).is_absolute():
        raise SourceError(f"{text!r}: a local feed source must be an absolute path")
    if not allowed_roots:
        raise SourceError(
            "local file feeds are off: no allowed source roots are configured "
            "(VIP_ALLOWED_SOURCE_ROOTS)"
        )
    source = parse_source(text, allowed_roots)
    if not isinstance(source, LocalSource):  # an absolute path has no scheme
        raise SourceError(f"{text!r}: not a local file")
    return source


def redacted(source: str) -> str:
    """``source`` with any password in its URL replaced by ``***``, for showing it."""
    if "://" not in source:
        return source
    parts = urlsplit(source)
    if parts.password is None:
        return source
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
