"""Text reading (OCR): PP-OCRv6 text detection and recognition, with the PP-OCR text-direction
classifier between them, run by RapidOCR on ONNX Runtime.

One request item is one encoded image (JPEG, PNG or anything OpenCV decodes). Its answer is a
UTF-8 JSON list of ``{"text", "score", "box": [x1, y1, x2, y2]}`` in reading order (top to
bottom, then left to right). ``score`` is the recogniser's mean character confidence (0..1);
``box`` is the axis-aligned bounding box of the detected text polygon, normalised to the image.
Lines scoring below ``MIN_SCORE`` (default 0.5, RapidOCR's own default) are dropped. The
detector sees the image with its shorter side scaled up to ``det_min_side`` (480) pixels.

The three ONNX files ship inside the pinned ``rapidocr`` wheel and are passed to RapidOCR by
path: RapidOCR downloads a model only when it is given no path, and the recogniser's character
set is read from the ONNX file's metadata, so nothing is fetched at run time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import triton_python_backend_utils as pb_utils
import rapidocr.inference_engine.onnxruntime.main as rapidocr_ort
from rapidocr import RapidOCR

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import (
    InvalidInput,
    check_distribution,
    decode_image,
    error_response,
    no_spinning,
    parameters,
    read_min_scores,
)  # noqa: E402

# A rendered line read once at load time: it makes RapidOCR load all three of its lazily
# loaded models now (not on the first request) and proves that they read text.
_WARM_UP_TEXT = "Warm up 2024"


@contextmanager
def _sessions_without_spinning() -> Iterator[None]:
    """RapidOCR builds its ONNX Runtime sessions itself (some on first use) and has no setting
    for thread spinning, so its module's SessionOptions factory is swapped while they load (see
    vip_triton.no_spinning for what this saves)."""
    original = rapidocr_ort.SessionOptions
    rapidocr_ort.SessionOptions = lambda: no_spinning(original())
    try:
        yield
    finally:
        rapidocr_ort.SessionOptions = original


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        check_distribution(params["weights_distribution"])
        self._logger = pb_utils.Logger
        self._files = ExitStack()

        weights_dir = resources.files(params["weights_package"]) / params["weights_dir"]
        paths = {
            section: self._files.enter_context(resources.as_file(weights_dir / params[key]))
            for section, key in (("Det", "det_model"), ("Rec", "rec_model"), ("Cls", "cls_model"))
        }
        missing = [str(path) for path in paths.values() if not Path(path).is_file()]
        if missing:
            raise RuntimeError(
                f"ocr: model files missing from {params['weights_package']}: {missing}"
            )

        threads = int(params.get("threads", "2"))
        options: dict[str, object] = {
            "Global.log_level": "error",  # its per-image "no text found" warnings are noise
            "Global.text_score": 0.0,  # MIN_SCORE filters per request instead
            "Global.use_cls": True,  # turns upside-down text (e.g. rotated phone video) upright
            "Global.model_root_dir": str(Path(paths["Det"]).parent),
            "Det.limit_type": "min",
            "Det.limit_side_len": int(params["det_min_side"]),
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            "EngineConfig.onnxruntime.use_cuda": self._use_cuda(
                args.get("model_instance_kind", "CPU")
            ),
        }
        options.update({f"{section}.model_path": str(path) for section, path in paths.items()})
        self._default_min_score = float(params["default_min_score"])
        output = pb_utils.get_output_config_by_name(config, "RESULT")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        score_input = pb_utils.get_input_config_by_name(config, "MIN_SCORE")
        self._score_dtype = pb_utils.triton_string_to_numpy(score_input["data_type"])

        # RapidOCR creates some sessions lazily, on first use: the warm-up read creates them all.
        with _sessions_without_spinning():
            self._ocr = RapidOCR(params=options)
            read = self._read(_warm_up_image(), 0.0)
        if not read:
            raise RuntimeError("ocr: the warm-up image gave no text; the models do not work")
        self._logger.log_info(
            f"ocr: {params['model_version_tag']} loaded; warm-up read "
            f"{[line['text'] for line in read]}"
        )

    def _use_cuda(self, instance_kind: str) -> bool:
        if instance_kind != "GPU":
            return False
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return True
        # The onnxruntime wheel pinned here is the CPU build.
        self._logger.log_warn("ocr: ONNX Runtime has no CUDA provider; running on CPU")
        return False

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            try:
                responses.append(self._answer(request))
            except InvalidInput as error:
                responses.append(error_response(str(error), pb_utils.TritonError.INVALID_ARG))
            except Exception as error:  # fail this request, not the whole batch
                self._logger.log_error(f"ocr: {type(error).__name__}: {error}")
                responses.append(
                    error_response(
                        f"OCR failed: {type(error).__name__}: {error}",
                        pb_utils.TritonError.INTERNAL,
                    )
                )
        return responses

    def _answer(self, request: object) -> object:
        images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy().reshape(-1)
        min_scores = read_min_scores(
            request, len(images), self._default_min_score, self._score_dtype
        )
        answers = []
        for position, (encoded, min_score) in enumerate(zip(images, min_scores, strict=True)):
            lines = self._read(decode_image(encoded, position), float(min_score))
            answers.append(json.dumps(lines, ensure_ascii=False, separators=(",", ":")).encode())
        array = np.array(answers, dtype=self._output_dtype).reshape(-1, 1)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("RESULT", array)])

    def _read(self, image: np.ndarray, min_score: float) -> list[dict]:
        result = self._ocr(image)
        texts = getattr(result, "txts", None)
        if not texts:
            return []
        height, width = image.shape[:2]
        scale = np.array([width, height], dtype=np.float64)
        lines = []
        for text, score, polygon in zip(texts, result.scores, result.boxes, strict=True):
            if float(score) < min_score:
                continue
            corners = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) / scale
            low, high = np.clip(corners.min(axis=0), 0, 1), np.clip(corners.max(axis=0), 0, 1)
            lines.append(
                {
                    "text": str(text),
                    "score": round(min(max(float(score), 0.0), 1.0), 4),
                    "box": [round(float(v), 4) for v in (*low, *high)],
                }
            )
        return lines

    def finalize(self) -> None:
        self._ocr = None
        self._files.close()


def _warm_up_image() -> np.ndarray:
    image = np.full((96, 480, 3), 255, dtype=np.uint8)
    cv2.putText(image, _WARM_UP_TEXT, (16, 64), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
    return image
