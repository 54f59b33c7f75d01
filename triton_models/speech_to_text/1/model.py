"""Speech to text with segment and word times: Whisper on CTranslate2 (faster-whisper).

One request item is raw PCM: float32 little-endian samples at 16 kHz, one channel, no header.
Its answer is a UTF-8 JSON document::

    {"language": "en",
     "segments": [{"text", "start", "end",
                   "words": [{"word", "start", "end", "probability"}]}]}

Times are seconds from the start of the item plus the optional ``OFFSET_S`` (so a chunk of a
longer video can be sent with the chunk's start), clipped to the item's duration and
non-decreasing. Silero VAD (bundled with faster-whisper) drops non-speech first, so silence and
music give no segments instead of invented text. The rows of a batch run one after another:
faster-whisper transcribes one waveform at a time.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import InvalidInput, check_distribution, parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        # faster-whisper imports huggingface_hub; nothing may be fetched from a hub.
        os.environ["HF_HUB_OFFLINE"] = "1"
        from faster_whisper import WhisperModel

        config = json.loads(args["model_config"])
        params = parameters(config)
        check_distribution(params["weights_distribution"])
        check_distribution(params["engine_distribution"])
        self._logger = pb_utils.Logger
        self._tag = params["model_version_tag"]

        self._sample_rate = int(params["sample_rate"])
        self._max_samples = int(float(params["max_audio_s"]) * self._sample_rate)
        self._beam_size = int(params["beam_size"])
        self._language = params.get("language") or None
        self._vad_min_silence_ms = int(params["vad_min_silence_ms"])

        threads = int(params["cpu_threads"])
        weights = resources.files(params["weights_package"]) / params["weights_dir"]
        with resources.as_file(weights) as weights_dir:
            model = None
            if args.get("model_instance_kind", "CPU") == "GPU":
                model = self._gpu_model(WhisperModel, str(weights_dir), params, threads)
            if model is None:
                model = WhisperModel(
                    str(weights_dir),
                    device="cpu",
                    compute_type=params["compute_type"],
                    cpu_threads=threads,
                    num_workers=1,
                )
                _warm_up(model, self._sample_rate)
        self._model = model

        output = pb_utils.get_output_config_by_name(config, "RESULT")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        offset_input = pb_utils.get_input_config_by_name(config, "OFFSET_S")
        self._offset_dtype = pb_utils.triton_string_to_numpy(offset_input["data_type"])
        self._logger.log_info(
            f"speech_to_text: {self._tag} on {model.model.device}, beam {self._beam_size}, "
            f"{threads} CPU threads"
        )

    def _gpu_model(
        self, whisper_model: type, weights_dir: str, params: dict[str, str], threads: int
    ) -> object | None:
        import ctranslate2

        if ctranslate2.get_cuda_device_count() == 0:
            self._logger.log_warn("speech_to_text: CTranslate2 sees no CUDA device; using CPU")
            return None
        try:
            model = whisper_model(
                weights_dir,
                device="cuda",
                compute_type=params["gpu_compute_type"],
                cpu_threads=threads,
            )
            # cuBLAS and cuDNN load on first use, so a missing library shows up only here.
            _warm_up(model, self._sample_rate)
        except (RuntimeError, ValueError, OSError) as error:
            self._logger.log_warn(f"speech_to_text: CUDA failed ({error}); using CPU")
            return None
        return model

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            try:
                responses.append(self._answer(request))
            except InvalidInput as error:
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[],
                        error=pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG),
                    )
                )
        return responses

    def _answer(self, request: object) -> object:
        items = pb_utils.get_input_tensor_by_name(request, "AUDIO").as_numpy().reshape(-1)
        offsets = self._offsets(request, len(items))
        # Check every row before spending time on any of them.
        waveforms = [self._samples(item, position) for position, item in enumerate(items)]
        answers = [
            json.dumps(self._transcribe(samples, float(offset)), separators=(",", ":"))
            for samples, offset in zip(waveforms, offsets, strict=True)
        ]
        array = np.array([a.encode("utf-8") for a in answers], dtype=self._output_dtype)
        return pb_utils.InferenceResponse(
            output_tensors=[pb_utils.Tensor("RESULT", array.reshape(-1, 1))]
        )

    def _offsets(self, request: object, count: int) -> np.ndarray:
        tensor = pb_utils.get_input_tensor_by_name(request, "OFFSET_S")
        if tensor is None:
            return np.zeros(count, dtype=self._offset_dtype)
        offsets = tensor.as_numpy().astype(self._offset_dtype).reshape(-1)
        if offsets.shape[0] != count:
            raise InvalidInput(f"OFFSET_S has {offsets.shape[0]} values for {count} items")
        if not np.all(np.isfinite(offsets)) or np.any(offsets < 0):
            raise InvalidInput(f"OFFSET_S must be finite and >= 0, got {offsets.tolist()}")
        return offsets

    def _samples(self, item: object, position: int) -> np.ndarray:
        if not isinstance(item, bytes):
            raise InvalidInput(f"AUDIO[{position}] is not bytes")
        if len(item) % 4:
            raise InvalidInput(
                f"AUDIO[{position}] has {len(item)} bytes, not a whole number of float32 "
                f"samples; send 16 kHz mono float32 little-endian PCM"
            )
        count = len(item) // 4
        if count > self._max_samples:
            raise InvalidInput(
                f"AUDIO[{position}] is {count / self._sample_rate:.1f} s long; the limit is "
                f"{self._max_samples / self._sample_rate:.0f} s"
            )
        samples = np.frombuffer(item, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(samples)):
            raise InvalidInput(f"AUDIO[{position}] holds NaN or infinite samples")
        return samples

    def _transcribe(self, samples: np.ndarray, offset: float) -> dict:
        duration = len(samples) / self._sample_rate
        segments, info = self._model.transcribe(
            samples,
            language=self._language,
            beam_size=self._beam_size,
            word_timestamps=True,
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": self._vad_min_silence_ms},
            # Each window stands alone: a mistake cannot feed a repetition loop.
            condition_on_previous_text=False,
        )
        clock = _Clock(offset, duration)
        answer = []
        for segment in segments:
            words = [
                {
                    "word": word.word.strip(),
                    **clock.span(word.start, word.end),
                    "probability": round(float(word.probability), 4),
                }
                for word in segment.words or []
                if word.word.strip()
            ]
            text = segment.text.strip()
            if not text:
                continue
            if words:
                span = {"start": words[0]["start"], "end": words[-1]["end"]}
            else:
                span = clock.span(segment.start, segment.end)
            answer.append({"text": text, **span, "words": words})
        return {"language": info.language, "segments": answer}

    def finalize(self) -> None:
        self._model = None


def _warm_up(model: object, sample_rate: int) -> None:
    # Without VAD, so that the encoder and the decoder both run once before the first request.
    tone = 0.1 * np.sin(np.arange(sample_rate, dtype=np.float32) * 0.05)
    segments, _ = model.transcribe(tone, beam_size=1, vad_filter=False)
    list(segments)


class _Clock:
    """Item-relative times -> offset times, clipped to the item and never going backwards."""

    def __init__(self, offset: float, duration: float) -> None:
        self._offset = offset
        self._duration = duration
        self._last = 0.0

    def span(self, start: float, end: float) -> dict[str, float]:
        start = min(max(float(start), self._last), self._duration)
        end = min(max(float(end), start), self._duration)
        self._last = end
        return {"start": round(start + self._offset, 3), "end": round(end + self._offset, 3)}
