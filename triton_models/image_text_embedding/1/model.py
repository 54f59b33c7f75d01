"""Slot for a joint image-text embedding model (CLIP-like), which a GPU deployment provides.

No package that installs offline carries such weights (see triton_models/README.md), so by
default the slot has none. It still loads, so that the server starts, and answers every row
with ``{"available": false, "reason": "..."}``: never a made-up vector.

A request sends exactly one of ``IMAGE`` (encoded image bytes) or ``TEXT`` (UTF-8), one item
per batch row; each row gets one UTF-8 JSON document in ``RESULT``. Once weights are served,
an available row will read ``{"available": true, "embedding": [...]}``, with image and text
vectors in one space.

Where the weights come from is the config parameter ``weights_path``: a directory holding an
ONNX CLIP (``image_encoder.onnx``, ``text_encoder.onnx``, ``tokenizer.json``), as
``weights_format`` "onnx-clip" names it. Loading that format is not implemented yet: a
configured path is reported as the reason, and logged, instead of being half-used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import InvalidInput, parameters  # noqa: E402

_README = "see triton_models/README.md"


def unavailable_reason(weights_path: str, weights_format: str) -> str:
    if not weights_path:
        return (
            f"no image-text weights installed (config parameter weights_path is empty); {_README}"
        )
    if not Path(weights_path).exists():
        return f"image-text weights_path {weights_path} does not exist; {_README}"
    return (
        f"image-text weights are configured at {weights_path}, but loading the "
        f"{weights_format!r} format is not implemented yet; {_README}"
    )


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        self._reason = unavailable_reason(
            params.get("weights_path", "").strip(), params.get("weights_format", "").strip()
        )
        output = pb_utils.get_output_config_by_name(config, "RESULT")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        configured = bool(params.get("weights_path", "").strip())
        log = pb_utils.Logger.log_warn if configured else pb_utils.Logger.log_info
        log(f"image_text_embedding: not available: {self._reason}")

    def execute(self, requests: list) -> list:
        answer = json.dumps({"available": False, "reason": self._reason}).encode("utf-8")
        responses = []
        for request in requests:
            try:
                rows = _row_count(request)
            except InvalidInput as error:
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[],
                        error=pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG),
                    )
                )
                continue
            array = np.array([answer] * rows, dtype=self._output_dtype).reshape(-1, 1)
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("RESULT", array)])
            )
        return responses

    def finalize(self) -> None:
        pass


def _row_count(request: object) -> int:
    given = {
        name: tensor
        for name in ("IMAGE", "TEXT")
        if (tensor := pb_utils.get_input_tensor_by_name(request, name)) is not None
    }
    if len(given) != 1:
        raise InvalidInput(f"send exactly one of IMAGE or TEXT, got {sorted(given) or 'neither'}")
    (tensor,) = given.values()
    return int(tensor.as_numpy().reshape(-1).shape[0])
