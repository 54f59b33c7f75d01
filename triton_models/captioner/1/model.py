"""Slot for an image captioner (a vision-language model), which a GPU deployment provides.

No package that installs offline carries a captioning model (see triton_models/README.md), so
by default the slot has none. It still loads, so that the server starts, and answers every
image with ``{"available": false, "reason": "..."}``: never a made-up caption.

One request item is one encoded image; each row gets one UTF-8 JSON document in ``RESULT``.
Once a model is served, an available row will read ``{"available": true, "caption": "..."}``.

Where captions come from is the config parameter ``endpoint_url``: an OpenAI-compatible
chat-completions endpoint that accepts images (for example a vision-language model served by
vLLM next to Triton), with ``endpoint_model`` naming the model. Calling it is not implemented
yet: a configured endpoint is reported as the reason, and logged, instead of being half-used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import parameters  # noqa: E402

_README = "see triton_models/README.md"


def unavailable_reason(endpoint_url: str, endpoint_model: str) -> str:
    if not endpoint_url:
        return f"no captioning model configured (config parameter endpoint_url is empty); {_README}"
    return (
        f"a captioning endpoint is configured ({endpoint_url}, model {endpoint_model!r}), but "
        f"calling it is not implemented yet; {_README}"
    )


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        endpoint_url = params.get("endpoint_url", "").strip()
        self._reason = unavailable_reason(endpoint_url, params.get("endpoint_model", "").strip())
        output = pb_utils.get_output_config_by_name(config, "RESULT")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        log = pb_utils.Logger.log_warn if endpoint_url else pb_utils.Logger.log_info
        log(f"captioner: not available: {self._reason}")

    def execute(self, requests: list) -> list:
        answer = json.dumps({"available": False, "reason": self._reason}).encode("utf-8")
        responses = []
        for request in requests:
            rows = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy().reshape(-1)
            array = np.array([answer] * len(rows), dtype=self._output_dtype).reshape(-1, 1)
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("RESULT", array)])
            )
        return responses

    def finalize(self) -> None:
        pass
