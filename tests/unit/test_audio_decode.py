"""decode_audio_16k_mono on the real media corpus: lengths, levels and timeline alignment."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from agents.analysis.inference.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    decode_audio_16k_mono,
)

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
# "A few ms": less than one AAC frame at 48 kHz (21 ms).
LENGTH_TOLERANCE_S = 0.005


def _seconds(samples: np.ndarray) -> float:
    return len(samples) / SAMPLE_RATE


def _rms_db(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * np.log10(max(rms, 1e-12))


@pytest.mark.parametrize(
    ("name", "audio_ends_s"),
    [
        # End of the last audio frame (pts + duration), as ffprobe -show_frames reports it.
        ("video/bigbuckbunny.mp4", 5.312),  # AAC 48 kHz, 5.1 (6 channels)
        ("video/chaplin.mp4", 9.6141),  # MP3 44.1 kHz stereo in MP4
        ("video/big_buck_bunny_0_30.webm", 30.0222),  # Vorbis 44.1 kHz stereo in WebM
        ("video/id2_vcd_swwp2s.mpg", 2.978),  # MP2 44.1 kHz stereo in an MPEG-1 program stream
        ("video/video_with_failing_audio.mp4", 11.2337),  # MP3 whose sound stops at 4.6 s
        ("video/car-detection.mp4", 30.1653),  # AAC 48 kHz stereo, digital silence
        ("audio/jfk.flac", 11.0),
        ("audio/leopard_test_en.wav", 5.855),  # already 16 kHz mono, s16
    ],
)
def test_decodes_every_codec_to_16k_mono_float32_of_the_audio_length(
    name: str, audio_ends_s: float
) -> None:
    samples = decode_audio_16k_mono(MEDIA / name)

    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert _seconds(samples) == pytest.approx(audio_ends_s, abs=LENGTH_TOLERANCE_S)


@pytest.mark.parametrize(
    ("name", "documented_mean_db"),
    [
        # SOURCES.md's mean volume of each track; the mono mix-down keeps it within 3 dB.
        ("video/chaplin.mp4", -18.8),
        ("video/big_buck_bunny_0_30.webm", -27.6),
        ("video/fire2.mp4", -51.0),
    ],
)
def test_mixdown_keeps_the_documented_loudness(name: str, documented_mean_db: float) -> None:
    samples = decode_audio_16k_mono(MEDIA / name)

    assert _rms_db(samples) == pytest.approx(documented_mean_db, abs=3.0)


def test_six_channel_audio_mixes_down_to_sound_not_silence() -> None:
    samples = decode_audio_16k_mono(MEDIA / "video/bigbuckbunny.mp4")

    assert _rms_db(samples) > -45.0
    assert float(np.abs(samples).max()) <= 1.0


def test_silent_track_decodes_to_near_zero() -> None:
    samples = decode_audio_16k_mono(MEDIA / "video/car-detection.mp4")

    assert _seconds(samples) > 30.0
    assert _rms_db(samples) < -80.0  # SOURCES.md: mean and max -91 dB


def test_a_file_without_audio_gives_an_empty_array() -> None:
    samples = decode_audio_16k_mono(MEDIA / "video/bikes.mp4")

    assert samples.shape == (0,)
    assert samples.dtype == np.float32


def test_audio_that_stops_early_is_sound_then_silence_to_the_end_of_the_track() -> None:
    samples = decode_audio_16k_mono(MEDIA / "video/video_with_failing_audio.mp4")

    assert _rms_db(samples[: int(4.5 * SAMPLE_RATE)]) > -40.0
    assert _rms_db(samples[5 * SAMPLE_RATE :]) < -45.0  # SOURCES.md: "below -45 dB"


def test_speech_in_the_mpeg_program_stream_sits_where_the_alignment_puts_it() -> None:
    samples = decode_audio_16k_mono(MEDIA / "video/id2_vcd_swwp2s.mpg")

    # swwp2s.align: "set" starts at 0.49 s and "soon" ends at 2.21 s.
    speech = _rms_db(samples[int(0.6 * SAMPLE_RATE) : int(2.1 * SAMPLE_RATE)])
    after = _rms_db(samples[int(2.4 * SAMPLE_RATE) :])
    assert speech - after > 20.0


def test_pcm_at_16k_mono_passes_through_unchanged() -> None:
    with wave.open(str(MEDIA / "audio/leopard_test_en.wav")) as wav:
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")

    samples = decode_audio_16k_mono(MEDIA / "audio/leopard_test_en.wav")

    np.testing.assert_array_equal(samples, raw.astype(np.float32) / 32768)


def test_gaps_in_the_audio_timestamps_are_filled_with_silence() -> None:
    # fire2.mp4's audio jumps by 155 ms after its first frame: 2.261 s of samples end at 2.416 s.
    samples = decode_audio_16k_mono(MEDIA / "video/fire2.mp4")

    assert _seconds(samples) == pytest.approx(2.4165, abs=LENGTH_TOLERANCE_S)
    gap = samples[int(0.025 * SAMPLE_RATE) : int(0.17 * SAMPLE_RATE)]
    assert not gap.any()


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("audio/jfk.flac", 1.0, 3.0),  # decoded from the top
        ("audio/jfk.flac", 6.0, 8.5),  # after a seek
        ("video/big_buck_bunny_0_30.webm", 20.0, 22.0),
        ("video/smpte-2997.mp4", 6.25, 8.0),
    ],
)
def test_a_time_range_lines_up_with_the_same_stretch_of_the_whole_track(
    name: str, start: float, end: float
) -> None:
    whole = decode_audio_16k_mono(MEDIA / name)

    part = decode_audio_16k_mono(MEDIA / name, start=start, end=end)

    assert len(part) == round((end - start) * SAMPLE_RATE)
    # Cross-correlate against the whole track: the best lag is under 1 ms (16 samples).
    first, most = round(start * SAMPLE_RATE), 160
    scores = [
        float(np.dot(part, whole[first + lag : first + lag + len(part)]))
        for lag in range(-most, most + 1)
    ]
    assert abs(int(np.argmax(scores)) - most) <= 16


def test_a_range_past_the_end_of_the_audio_stops_where_the_audio_does() -> None:
    part = decode_audio_16k_mono(MEDIA / "audio/jfk.flac", start=10.0, end=12.0)

    assert _seconds(part) == pytest.approx(1.0, abs=LENGTH_TOLERANCE_S)


def test_a_range_that_ends_where_it_starts_is_empty() -> None:
    assert decode_audio_16k_mono(MEDIA / "audio/jfk.flac", start=3.0, end=3.0).shape == (0,)


def test_rejects_a_range_that_ends_before_it_starts() -> None:
    with pytest.raises(ValueError, match=r"need 0 <= start <= end, got start=3\.0 end=2\.0"):
        decode_audio_16k_mono(MEDIA / "audio/jfk.flac", start=3.0, end=2.0)


def test_a_missing_file_is_a_decode_error(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="no such file"):
        decode_audio_16k_mono(tmp_path / "missing.mp4")


def test_bytes_that_are_not_media_are_a_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(b"definitely not a media file" * 100)

    with pytest.raises(AudioDecodeError, match="not a readable media file"):
        decode_audio_16k_mono(path)
