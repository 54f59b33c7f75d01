"""A typed client for the models in ``triton_models/``, over Triton's HTTP/REST protocol.

Wraps ``tritonclient.http`` the way pytriton's ``ModelClient`` does: a url, an init timeout
for waiting on the server, an inference timeout for each call, a context manager, and typed
errors (see :mod:`agents.shared.errors`). One client holds one connection pool and is not
thread-safe: give each worker thread its own.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import numpy as np
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from agents.shared.errors import InferenceError, InferenceRejected, InferenceUnavailable
from agents.shared.metrics import dependency_call

__all__ = [
    "DETECTION_MODEL",
    "EMBEDDING_MODEL",
    "IMAGE_FEATURES_MODEL",
    "Detection",
    "TritonClient",
]

DETECTION_MODEL: Final = "object_detection"
EMBEDDING_MODEL: Final = "text_embedding"
# The image tagger also answers its pooled features (FEATURES) for query-by-image.
IMAGE_FEATURES_MODEL: Final = "image_tags"
_VERSION_PARAMETER: Final = "model_version_tag"
_POLL_INTERVAL_S: Final = 0.25
# HTTP statuses that mean "this input will never succeed"; 5xx and network errors may pass.
_REJECTED_STATUSES: Final = frozenset({"400", "404", "413", "422"})
_UNAVAILABLE_STATUSES: Final = frozenset({"429", "502", "503", "504"})
_UNAVAILABLE_HINTS: Final = ("unknown model", "not ready", "unavailable", "no available versions")
# Texts whose embeddings a client keeps (about 1.5 KB each): the query service embeds the same
# texts again and again (a query for search, hybrid and then its answer; the sentences of
# moments that many questions retrieve), and one model gives one text one vector.
EMBEDDING_CACHE_SIZE: Final = 4096

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object; ``box`` is (x1, y1, x2, y2) as fractions of the image size."""

    label: str
    score: float
    box: tuple[float, float, float, float]


class TritonClient:
    """Calls ``object_detection``, ``text_embedding``, the ``image_tags`` features and the
    JSON-answering models on one Triton server.

    ``url`` is ``host:port`` of the HTTP endpoint (``Settings.triton_url``).
    """

    def __init__(
        self,
        url: str,
        *,
        init_timeout_s: float = 120.0,
        inference_timeout_s: float = 30.0,
    ) -> None:
        if init_timeout_s <= 0 or inference_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        self.url = url.removeprefix("http://")
        self.init_timeout_s = init_timeout_s
        self.inference_timeout_s = inference_timeout_s
        self._client = triton_http.InferenceServerClient(
            self.url,
            connection_timeout=inference_timeout_s,
            network_timeout=inference_timeout_s,
        )
        self._configs: dict[str, dict[str, Any]] = {}
        self._embedded: OrderedDict[str, np.ndarray] = OrderedDict()  # least recent first

    # Lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def wait_for_ready(
        self,
        deadline_s: float | None = None,
        models: Sequence[str] = (DETECTION_MODEL, EMBEDDING_MODEL),
    ) -> None:
        """Poll until the server and ``models`` are ready, for at most ``deadline_s`` seconds.

        Raises :class:`InferenceUnavailable` naming the last reason when time runs out.
        """
        budget = self.init_timeout_s if deadline_s is None else deadline_s
        give_up_at = time.monotonic() + budget
        while True:
            reason = self._not_ready_reason(models)
            if reason is None:
                return
            if time.monotonic() >= give_up_at:
                raise InferenceUnavailable(
                    f"Triton at {self.url} not ready after {budget:.1f} s: {reason}"
                )
            time.sleep(_POLL_INTERVAL_S)

    def _not_ready_reason(self, models: Sequence[str]) -> str | None:
        try:
            if not self._client.is_server_ready():
                return "server is not ready"
            for model in models:
                if not self._client.is_model_ready(model):
                    return f"model {model!r} is not ready"
        except (OSError, InferenceServerException) as error:
            return f"{type(error).__name__}: {error}"
        return None

    # Model metadata -------------------------------------------------------------------------
    def model_config(self, model: str) -> dict[str, Any]:
        """The model's configuration as the server reports it (cached per client)."""
        if model not in self._configs:
            self._configs[model] = self._call(model, lambda: self._client.get_model_config(model))
        return self._configs[model]

    def model_version(self, model: str) -> str:
        """The ``model_version_tag`` its config declares, e.g. for provenance records."""
        parameters = self.model_config(model).get("parameters", {})
        tag = parameters.get(_VERSION_PARAMETER, {}).get("string_value")
        if not tag:
            raise InferenceError(f"model {model!r} declares no {_VERSION_PARAMETER} parameter")
        return str(tag)

    def model_fingerprint(self, model: str) -> str:
        """The version tag plus a digest of the config's other parameters (input sizes,
        thresholds, scale steps): what the analysis cache is keyed by, so that a changed
        setting, not only new weights, invalidates cached results. ``threads`` is left out:
        it changes speed, not answers."""
        parameters = self.model_config(model).get("parameters", {})
        settings = {
            name: value.get("string_value")
            for name, value in sorted(parameters.items())
            if name not in (_VERSION_PARAMETER, "threads")
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        return f"{self.model_version(model)}#{digest[:10]}"

    def max_batch_size(self, model: str) -> int:
        return max(1, int(self.model_config(model).get("max_batch_size", 1)))

    # Inference ------------------------------------------------------------------------------
    def detect_objects(
        self, images: Sequence[bytes], min_score: float = 0.25
    ) -> list[list[Detection]]:
        """Detect COCO objects in each encoded image (JPEG/PNG bytes), best first."""
        answers = self.call_json(
            DETECTION_MODEL,
            "IMAGE",
            images,
            output_name="DETECTIONS",
            scalars={"MIN_SCORE": min_score},
        )
        return [_parse_detections(answer) for answer in answers]

    def call_json(
        self,
        model: str,
        input_name: str,
        items: Sequence[bytes],
        output_name: str = "RESULT",
        scalars: Mapping[str, float] | None = None,
    ) -> list[Any]:
        """The common shape of our python-backend models: one BYTES item per batch row in
        (an encoded image, a PCM buffer, an .npz), one UTF-8 JSON document per row out.
        ``scalars`` become FP32 [1] inputs repeated for every row. Batches are split at the
        model's max_batch_size; Triton's dynamic batcher may merge them further."""
        answers, _ = self.call_json_with(model, input_name, items, (), output_name, scalars)
        return answers

    def call_json_with(
        self,
        model: str,
        input_name: str,
        items: Sequence[bytes],
        arrays: Sequence[str],
        output_name: str = "RESULT",
        scalars: Mapping[str, float] | None = None,
    ) -> tuple[list[Any], dict[str, np.ndarray]]:
        """:meth:`call_json` that also asks for the numeric outputs named in ``arrays`` in the
        same inference (e.g. image_tags' FEATURES with its tags), concatenated over batches."""
        answers: list[Any] = []
        extra: dict[str, list[np.ndarray]] = {name: [] for name in arrays}
        for batch in _batches(items, self.max_batch_size(model)):
            data = triton_http.InferInput(input_name, [len(batch), 1], "BYTES")
            data.set_data_from_numpy(np.array(batch, dtype=np.object_).reshape(-1, 1))
            inputs = [data]
            for name, value in (scalars or {}).items():
                scalar = triton_http.InferInput(name, [len(batch), 1], "FP32")
                scalar.set_data_from_numpy(np.full((len(batch), 1), value, np.float32))
                inputs.append(scalar)
            outputs = self._infer_many(model, inputs, [output_name, *arrays])
            answers.extend(json.loads(item) for item in outputs[output_name].reshape(-1))
            for name in arrays:
                extra[name].append(outputs[name])
        return answers, {
            name: np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
            for name, parts in extra.items()
        }

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised sentence embeddings, one float32 row per text (n x 384). Texts this
        client embedded lately come from its cache (:data:`EMBEDDING_CACHE_SIZE` texts, least
        recently used dropped first); only the others go to Triton, each once."""
        found = {text: self._embedded[text] for text in texts if text in self._embedded}
        missing = [text for text in dict.fromkeys(texts) if text not in found]
        if missing:
            fresh = self._embed(missing)
            for text, row in zip(missing, fresh, strict=True):
                kept = row.copy()
                kept.setflags(write=False)  # shared by every later answer for this text
                found[text] = kept
        for text in found:
            self._embedded[text] = found[text]
            self._embedded.move_to_end(text)
        while len(self._embedded) > EMBEDDING_CACHE_SIZE:
            self._embedded.popitem(last=False)
        if not texts:
            dims = self.model_config(EMBEDDING_MODEL)["output"][0]["dims"]
            return np.zeros((0, int(dims[-1])), dtype=np.float32)
        return np.stack([found[text] for text in texts])

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        """``texts`` (at least one) through the model, in batches of its max_batch_size."""
        rows: list[np.ndarray] = []
        for batch in _batches(texts, self.max_batch_size(EMBEDDING_MODEL)):
            encoded = [text.encode("utf-8") for text in batch]
            text_input = triton_http.InferInput("TEXT", [len(batch), 1], "BYTES")
            text_input.set_data_from_numpy(np.array(encoded, dtype=np.object_).reshape(-1, 1))
            rows.append(self._infer(EMBEDDING_MODEL, [text_input], "EMBEDDING"))
        return np.concatenate(rows).astype(np.float32, copy=False)

    def image_features(self, images: Sequence[bytes]) -> np.ndarray:
        """L2-normalised image embeddings (the tagger's pooled features), one float32 row per
        encoded image (n x 1280). Raises :class:`InferenceRejected` for undecodable bytes."""
        rows: list[np.ndarray] = []
        for batch in _batches(images, self.max_batch_size(IMAGE_FEATURES_MODEL)):
            image_input = triton_http.InferInput("IMAGE", [len(batch), 1], "BYTES")
            image_input.set_data_from_numpy(np.array(batch, dtype=np.object_).reshape(-1, 1))
            rows.append(self._infer(IMAGE_FEATURES_MODEL, [image_input], "FEATURES"))
        if not rows:
            outputs = self.model_config(IMAGE_FEATURES_MODEL)["output"]
            [features] = [output for output in outputs if output["name"] == "FEATURES"]
            return np.zeros((0, int(features["dims"][-1])), dtype=np.float32)
        return np.concatenate(rows).astype(np.float32, copy=False)

    def _infer(
        self, model: str, inputs: list[triton_http.InferInput], output_name: str
    ) -> np.ndarray:
        return self._infer_many(model, inputs, [output_name])[output_name]

    def _infer_many(
        self, model: str, inputs: list[triton_http.InferInput], output_names: Sequence[str]
    ) -> dict[str, np.ndarray]:
        requested = [
            triton_http.InferRequestedOutput(name, binary_data=True) for name in output_names
        ]
        result = self._call(model, lambda: self._client.infer(model, inputs, outputs=requested))
        arrays = {}
        for name in output_names:
            array = result.as_numpy(name)
            if array is None:
                raise InferenceError(f"{model} answered without {name}")
            arrays[name] = array
        return arrays

    def _call(self, model: str, call: Callable[[], _T]) -> _T:
        try:
            with dependency_call("triton", model):
                return call()
        except InferenceServerException as error:
            raise _classify(model, error) from error
        except OSError as error:  # refused, reset, timed out
            raise InferenceUnavailable(
                f"{model}: Triton at {self.url} unreachable: {type(error).__name__}: {error}"
            ) from error


def _classify(model: str, error: InferenceServerException) -> InferenceError:
    status = str(error.status() or "")
    message = f"{model}: {error.message() or error}"
    # A missing or still-loading model is the deployment's fault, not the input's.
    lowered = message.lower()
    if status in _UNAVAILABLE_STATUSES or any(hint in lowered for hint in _UNAVAILABLE_HINTS):
        return InferenceUnavailable(message)
    if status in _REJECTED_STATUSES:
        return InferenceRejected(message)
    return InferenceError(f"{message} (status {status or 'unknown'})")


def _batches(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _parse_detections(entries: list[dict[str, Any]]) -> list[Detection]:
    return [
        Detection(
            label=str(entry["label"]),
            score=float(entry["score"]),
            box=(
                float(entry["box"][0]),
                float(entry["box"][1]),
                float(entry["box"][2]),
                float(entry["box"][3]),
            ),
        )
        for entry in entries
    ]
