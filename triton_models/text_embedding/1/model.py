"""Sentence embeddings with all-MiniLM-L6-v2 (int8 ONNX) on ONNX Runtime.

One request item is one UTF-8 text. Its answer is a 384-dimensional, L2-normalised vector: the
attention-masked mean of the last hidden state, as sentence-transformers computes it.
All texts of one dynamic batch are tokenised and run together.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import InvalidInput, check_distribution, no_spinning, parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        check_distribution(params["onnx_distribution"])
        check_distribution(params["tokenizer_distribution"])

        tokenizer_file = resources.files(params["tokenizer_package"]) / params["tokenizer_file"]
        with resources.as_file(tokenizer_file) as path:
            self._tokenizer = Tokenizer.from_file(str(path))
        # The file pads every text to 128 tokens; pad to the longest in the batch instead.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=int(params["max_tokens"]))
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106

        options = no_spinning(ort.SessionOptions())
        options.intra_op_num_threads = int(params.get("threads", "2"))
        options.inter_op_num_threads = 1
        onnx_file = resources.files(params["onnx_package"]) / params["onnx_file"]
        with resources.as_file(onnx_file) as path:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=self._providers(args)
            )
        self._input_names = {i.name for i in self._session.get_inputs()}

        output = pb_utils.get_output_config_by_name(config, "EMBEDDING")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        self._dim = int(output["dims"][-1])
        pb_utils.Logger.log_info(
            f"text_embedding: {params['model_version_tag']} on {self._session.get_providers()}"
        )

    @staticmethod
    def _providers(args: dict) -> list[str]:
        wants_gpu = args.get("model_instance_kind", "CPU") == "GPU"
        if wants_gpu and "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if wants_gpu:
            pb_utils.Logger.log_warn("text_embedding: onnxruntime has no CUDA provider; using CPU")
        return ["CPUExecutionProvider"]

    def execute(self, requests: list) -> list:
        texts_per_request: list[list[str] | None] = []
        errors: list[str | None] = []
        for request in requests:
            try:
                texts_per_request.append(_texts(request))
                errors.append(None)
            except InvalidInput as error:
                texts_per_request.append(None)
                errors.append(str(error))

        all_texts = [text for texts in texts_per_request if texts for text in texts]
        vectors = self._embed(all_texts) if all_texts else np.zeros((0, self._dim))

        responses = []
        start = 0
        for texts, error in zip(texts_per_request, errors, strict=True):
            if texts is None:
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[],
                        error=pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG),
                    )
                )
                continue
            chunk = vectors[start : start + len(texts)].astype(self._output_dtype)
            start += len(texts)
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("EMBEDDING", chunk)])
            )
        return responses

    def _embed(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        mask = attention_mask[:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)

    def finalize(self) -> None:
        self._session = None


def _texts(request: object) -> list[str]:
    items = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
    texts = []
    for position, item in enumerate(items):
        if not isinstance(item, bytes):
            raise InvalidInput(f"TEXT[{position}] is not a byte string")
        try:
            texts.append(item.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise InvalidInput(f"TEXT[{position}] is not valid UTF-8: {error}") from error
    return texts
