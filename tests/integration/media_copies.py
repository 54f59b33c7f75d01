"""Make fresh copies of shared media so each test run ingests a video the stores have not seen.

Video ids are content hashes, so a byte-identical re-upload would be (correctly) a no-op. A
remux with a unique metadata tag keeps every frame and packet but changes the hash.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import av


def unique_copy(source: Path, target_dir: Path, suffix: str | None = None) -> Path:
    target = target_dir / f"{source.stem}-{uuid.uuid4().hex[:8]}{suffix or source.suffix}"
    if target.suffix == ".gif" and source.suffix == ".gif":
        return _unique_gif(source, target)
    # faststart puts the index first, as streaming-friendly uploads have it; a truncated copy
    # then still opens and the loss shows up only when the data runs out.
    options = {"movflags": "faststart"} if target.suffix in {".mp4", ".mov"} else {}
    with av.open(str(source)) as src, av.open(str(target), mode="w", options=options) as dst:
        dst.metadata["comment"] = f"vip-test {uuid.uuid4()}"
        mapping = {}
        for stream in src.streams:
            if stream.type in {"video", "audio"}:
                mapping[stream.index] = dst.add_stream_from_template(stream)
        for packet in src.demux(*[s for s in src.streams if s.index in mapping]):
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            dst.mux(packet)
    if target.suffix in _PROGRAM_STREAM:
        _mark_program_stream(target)
    return target


def _unique_gif(source: Path, target: Path) -> Path:
    """FFmpeg's GIF muxer writes no metadata, so a remux would be byte-identical: insert a GIF89a
    comment extension before the trailer instead (decoders skip it)."""
    data = source.read_bytes()
    if not data.endswith(b"\x3b"):
        raise ValueError(f"{source}: no GIF trailer")
    comment = f"vip-test {uuid.uuid4()}".encode()
    block = b"\x21\xfe" + bytes([len(comment)]) + comment + b"\x00"
    target.write_bytes(data[:-1] + block + data[-1:])
    return target


_PROGRAM_STREAM = {".mpg", ".mpeg"}
_PROGRAM_END = b"\x00\x00\x01\xb9"


def _mark_program_stream(target: Path) -> None:
    """FFmpeg's MPEG-PS muxer writes no metadata, so the remux alone is byte-identical every
    time: add a padding-stream packet (stream id 0xBE, which demuxers skip) before the program
    end code."""
    data = target.read_bytes()
    payload = f"vip-test {uuid.uuid4()}".encode()
    packet = b"\x00\x00\x01\xbe" + len(payload).to_bytes(2, "big") + payload
    cut = len(data) - len(_PROGRAM_END) if data.endswith(_PROGRAM_END) else len(data)
    target.write_bytes(data[:cut] + packet + data[cut:])


def truncated_copy(source: Path, target_dir: Path, keep_fraction: float) -> Path:
    """A copy cut short, as an interrupted upload leaves it (header intact, data missing)."""
    fresh = unique_copy(source, target_dir)
    data = fresh.read_bytes()
    target = target_dir / f"truncated-{fresh.name}"
    target.write_bytes(data[: int(len(data) * keep_fraction)])
    return target
