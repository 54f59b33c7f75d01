"""A live feed's source: the allowed schemes, the SSRF guard and the file roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.shared.sources import (
    LocalSource,
    SourceError,
    StreamUrl,
    address_problem,
    parse_live_source,
    redacted,
    resolve_host,
)


def resolver(table: dict[str, list[str]]):
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise SourceError(f"cannot resolve host {host!r}")
        return table[host]

    return resolve


PUBLIC = resolver({"camera.example.com": ["93.184.215.14", "2606:2800:21f:cb07::1"]})


def test_a_public_stream_url_is_accepted_with_its_host():
    url = "rtsp://camera.example.com:8554/stream1"

    assert parse_live_source(url, resolve=PUBLIC) == StreamUrl(url, "rtsp", "camera.example.com")


@pytest.mark.parametrize(
    "url",
    [
        "rtmp://8.8.8.8/live/key",
        "http://8.8.8.8/live/index.m3u8",
        "https://8.8.8.8/live/index.m3u8?token=abc",
        "HTTPS://[2001:4860:4860::8888]/a.m3u8",
    ],
)
def test_rtmp_and_hls_urls_with_public_addresses_are_accepted(url: str):
    assert isinstance(parse_live_source(url), StreamUrl)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("ftp://8.8.8.8/a.mp4", "ftp"),
        ("file:///etc/passwd", "file"),
        ("s3://bucket/a.mp4", "s3"),
        ("udp://8.8.8.8:1234", "udp"),
        ("gopher://8.8.8.8/", "gopher"),
    ],
)
def test_other_schemes_are_refused(url: str, scheme: str):
    with pytest.raises(SourceError, match=f"unsupported feed scheme '{scheme}'"):
        parse_live_source(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
    ],
)
def test_metadata_and_link_local_addresses_are_refused_even_where_private_ones_are_allowed(
    url: str,
):
    with pytest.raises(SourceError, match="is link-local or a cloud metadata address"):
        parse_live_source(url, allow_private=True, allow_loopback=True)


@pytest.mark.parametrize(
    "url", ["rtsp://0.0.0.0/s", "rtsp://[::]/s", "rtsp://224.0.0.1/s", "rtsp://240.0.0.1/s"]
)
def test_addresses_that_are_not_unicast_are_refused(url: str):
    with pytest.raises(SourceError, match="is not a unicast address"):
        parse_live_source(url, allow_private=True, allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://10.1.2.3/s",
        "rtsp://172.16.0.1/s",
        "rtsp://192.168.1.20:554/s",
        "rtsp://100.64.0.1/s",
        "rtsp://[fd12:3456::1]/s",
    ],
)
def test_private_addresses_are_refused_unless_allowed(url: str):
    with pytest.raises(SourceError, match=r"is private \(allowed by feed_sources_allow_private\)"):
        parse_live_source(url)

    assert isinstance(parse_live_source(url, allow_private=True), StreamUrl)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/a.m3u8", "http://[::1]/a.m3u8", "http://[::ffff:127.0.0.1]/"]
)
def test_loopback_is_refused_unless_allowed(url: str):
    with pytest.raises(SourceError, match=r"is loopback \(allowed by feed_sources_allow_loop"):
        parse_live_source(url, allow_private=True)

    assert isinstance(parse_live_source(url, allow_loopback=True), StreamUrl)


@pytest.mark.parametrize(
    "url", ["http://localhost/a.m3u8", "http://2130706433/a.m3u8", "http://0x7f.1/a.m3u8"]
)
def test_names_and_numeric_forms_that_resolve_to_loopback_are_refused(url: str):
    # The system resolver, as FFmpeg would use it: none of these needs a DNS server.
    with pytest.raises(SourceError, match="is loopback"):
        parse_live_source(url)


def test_a_name_with_any_inside_address_is_refused():
    split = resolver({"cam.example.com": ["93.184.215.14", "10.0.0.7"]})

    with pytest.raises(SourceError, match=r"cam\.example\.com: refused, 10\.0\.0\.7 is private"):
        parse_live_source("rtsp://cam.example.com/s", resolve=split)


def test_an_unresolvable_host_is_refused():
    with pytest.raises(SourceError, match=r"cannot resolve host 'nowhere\.example\.com'"):
        parse_live_source("rtsp://nowhere.example.com/s", resolve=PUBLIC)


def test_the_system_resolver_names_every_address_of_a_numeric_host():
    assert resolve_host("127.0.0.1") == ["127.0.0.1"]


def test_a_refusal_does_not_repeat_the_credentials_of_the_url():
    with pytest.raises(SourceError) as refused:
        parse_live_source("rtsp://admin:hunter2@10.0.0.9/stream")

    assert str(refused.value) == (
        "rtsp://10.0.0.9: refused, 10.0.0.9 is private (allowed by feed_sources_allow_private)"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("rtsp:///stream", "the rtsp URL has no host"),
        ("http://8.8.8.8:99999/a.m3u8", r"http://8\.8\.8\.8: invalid port"),
        ("http://8.8.8.8/a b.m3u8", "must not contain spaces"),
        ("http://8.8.8.8/a\r\nHost: x", "control characters"),
        ("   ", "empty source"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url: str, message: str):
    with pytest.raises(SourceError, match=message):
        parse_live_source(url)


def test_a_password_is_masked_when_a_source_is_shown():
    assert redacted("rtsp://admin:hunter2@cam.example.com:554/s?x=1") == (
        "rtsp://admin:***@cam.example.com:554/s?x=1"
    )
    assert redacted("rtsp://cam.example.com/s") == "rtsp://cam.example.com/s"
    assert redacted("/media/a.mp4") == "/media/a.mp4"


# Local files ------------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    allowed = tmp_path / "media"
    allowed.mkdir()
    (allowed / "clip.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    return allowed, tmp_path


def test_a_file_under_an_allowed_root_is_accepted(roots: tuple[Path, Path]):
    allowed, _ = roots

    source = parse_live_source(str(allowed / "clip.mp4"), [allowed])

    assert source == LocalSource((allowed / "clip.mp4").resolve())


def test_without_allowed_roots_file_feeds_are_off(roots: tuple[Path, Path]):
    allowed, _ = roots

    with pytest.raises(SourceError, match="local file feeds are off"):
        parse_live_source(str(allowed / "clip.mp4"))


def test_a_relative_path_is_refused(roots: tuple[Path, Path]):
    allowed, _ = roots

    with pytest.raises(SourceError, match="must be an absolute path"):
        parse_live_source("media/clip.mp4", [allowed])


def test_a_path_that_climbs_out_of_the_roots_is_refused(roots: tuple[Path, Path]):
    allowed, _ = roots

    with pytest.raises(SourceError, match="outside the allowed upload roots"):
        parse_live_source(f"{allowed}/../secret.mp4", [allowed])


def test_a_link_inside_the_roots_to_a_file_outside_is_refused(roots: tuple[Path, Path]):
    allowed, outside = roots
    (allowed / "link.mp4").symlink_to(outside / "secret.mp4")

    with pytest.raises(SourceError, match="outside the allowed upload roots"):
        parse_live_source(str(allowed / "link.mp4"), [allowed])


def test_a_missing_file_under_the_roots_is_named(roots: tuple[Path, Path]):
    allowed, _ = roots

    with pytest.raises(SourceError, match=r"gone\.mp4: no such file"):
        parse_live_source(str(allowed / "gone.mp4"), [allowed])


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("8.8.8.8", None),
        ("169.254.169.254", "is link-local or a cloud metadata address"),
        ("127.0.0.53", "is loopback (allowed by feed_sources_allow_loopback)"),
        ("fe80::1%eth0", "is link-local or a cloud metadata address"),
    ],
)
def test_address_problem_names_the_reason(address: str, problem: str | None):
    assert address_problem(address) == problem
