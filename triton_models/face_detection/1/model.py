"""Frontal face detection with OpenCV's Viola-Jones Haar cascade (Lienhart's
``haarcascade_frontalface_default.xml``, shipped in the opencv-python-headless wheel).

One request item is one encoded image (JPEG, PNG or anything OpenCV decodes). Its answer is a
UTF-8 JSON list of ``{"score", "box": [x1, y1, x2, y2]}``, the box normalised to the image
(0..1), best score first. Faces scoring below ``MIN_SCORE`` (default 0.5) are dropped.

A cascade gives no probability. ``detectMultiScale3(..., outputRejectLevels=True)`` reports,
per grouped box, the summed weak-classifier response of the cascade's last stage (its "level
weight"): how far past that stage's threshold the window got. It grows with how face-like the
window is but has no fixed range, so it is squashed with a logistic,

    score = 1 / (1 + exp(-(level_weight - score_center) / score_scale)),

with ``score_center`` 4.5 and ``score_scale`` 1.0 (config parameters). They were set on the
project's test media at 640 px: real frontal faces (the GRID speaker, the astronaut, Zidane's
companion, Chaplin) had level weights 5.3-11.8; the false detections that survived grouping
(blurred crowd, flat sky, a dog video, a head seen from behind) had 2.8-5.7, mostly below 4.
So 0.5 means "level weight 4.5" and the score orders detections; it is not a calibrated
probability. Profile and small faces (under about 24 px) are not found.
"""

from __future__ import annotations

import json
import math
import sys
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import triton_python_backend_utils as pb_utils

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import (
    InvalidInput,
    check_distribution,
    decode_image,
    error_response,
    parameters,
    read_min_scores,
)  # noqa: E402

# The cascade was trained on 24x24 windows; smaller faces cannot be found without upscaling.
_WINDOW_PX = 24


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        check_distribution(params["weights_distribution"])
        self._logger = pb_utils.Logger

        cascade_file = resources.files(params["weights_package"]) / params["weights_dir"]
        with resources.as_file(cascade_file / params["cascade"]) as path:
            self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"face_detection: could not load the cascade {params['cascade']}")
        cv2.setNumThreads(int(params.get("threads", "2")))
        if args.get("model_instance_kind", "CPU") == "GPU":
            self._logger.log_warn("face_detection: the Haar cascade runs on the CPU only")

        self._max_side = int(params["max_side"])
        self._scale_factor = float(params["scale_factor"])
        self._min_neighbors = int(params["min_neighbors"])
        self._min_face_fraction = float(params["min_face_fraction"])
        self._score_center = float(params["score_center"])
        self._score_scale = float(params["score_scale"])
        self._default_min_score = float(params["default_min_score"])
        output = pb_utils.get_output_config_by_name(config, "RESULT")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        score_input = pb_utils.get_input_config_by_name(config, "MIN_SCORE")
        self._score_dtype = pb_utils.triton_string_to_numpy(score_input["data_type"])
        self._logger.log_info(f"face_detection: {params['model_version_tag']} loaded")

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            try:
                responses.append(self._answer(request))
            except InvalidInput as error:
                responses.append(error_response(str(error), pb_utils.TritonError.INVALID_ARG))
            except cv2.error as error:  # fail this request, not the whole batch
                self._logger.log_error(f"face_detection: {error}")
                responses.append(
                    error_response(f"face detection failed: {error}", pb_utils.TritonError.INTERNAL)
                )
        return responses

    def _answer(self, request: object) -> object:
        images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy().reshape(-1)
        min_scores = read_min_scores(
            request, len(images), self._default_min_score, self._score_dtype
        )
        answers = []
        for position, (encoded, min_score) in enumerate(zip(images, min_scores, strict=True)):
            faces = self._detect(decode_image(encoded, position), float(min_score))
            answers.append(json.dumps(faces, separators=(",", ":")).encode("utf-8"))
        array = np.array(answers, dtype=self._output_dtype).reshape(-1, 1)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("RESULT", array)])

    def _detect(self, image: np.ndarray, min_score: float) -> list[dict]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        height, width = gray.shape
        scale = min(1.0, self._max_side / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        # Equalising lifts faces in dim or low-contrast frames; it raised true faces' level
        # weights on the test media more than it raised false detections'.
        gray = cv2.equalizeHist(gray)
        small_h, small_w = gray.shape
        min_face = max(_WINDOW_PX, round(self._min_face_fraction * min(small_h, small_w)))
        if min(small_h, small_w) < min_face:
            return []
        rects, _levels, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self._scale_factor,
            minNeighbors=self._min_neighbors,
            minSize=(min_face, min_face),
            outputRejectLevels=True,
        )
        faces = []
        for (x, y, w, h), weight in zip(
            np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1), strict=True
        ):
            score = self._score(float(weight))
            if score < min_score:
                continue
            box = [x / small_w, y / small_h, (x + w) / small_w, (y + h) / small_h]
            faces.append(
                {
                    "score": round(score, 4),
                    "box": [round(min(max(float(v), 0.0), 1.0), 4) for v in box],
                }
            )
        faces.sort(key=lambda face: -face["score"])
        return faces

    def _score(self, level_weight: float) -> float:
        margin = (level_weight - self._score_center) / self._score_scale
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, margin))))

    def finalize(self) -> None:
        self._cascade = None
