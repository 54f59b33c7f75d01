"""COCO-80 object detection with darknet yolov4-tiny, run by OpenCV's DNN module.

One request item is one encoded image (JPEG, PNG or anything OpenCV decodes). Its answer is a
UTF-8 JSON list of ``{"label", "score", "box": [x1, y1, x2, y2]}`` with the box normalised to the
image (0..1), sorted by score, after per-class non-maximum suppression.

The image is letterboxed (aspect kept, grey padding) rather than stretched to the square input:
darknet trained yolov4-tiny on stretched images, but on our wide video keyframes (640x272 and
the like) letterboxing scored every gate label higher (bicycle on bikes.mp4 0.66 against 0.40,
person 0.996 against 0.65, car 0.87 against 0.65, bottle 0.95 against 0.89).
"""

from __future__ import annotations

import hashlib
import json
import sys
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
    distribution_file,
    parameters,
    read_min_scores,
)  # noqa: E402

# Mid grey, as darknet's own letterbox_image pads (0.5 of full scale).
_PAD_VALUE = 127


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        check_distribution(params["weights_distribution"])
        self._logger = pb_utils.Logger

        pinned, weights_dir = params["weights_distribution"], params["weights_dir"]
        cfg = distribution_file(pinned, f"{weights_dir}/{params['darknet_cfg']}")
        weights = distribution_file(pinned, f"{weights_dir}/{params['darknet_weights']}")
        names = distribution_file(pinned, f"{weights_dir}/{params['class_names']}")
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != params["weights_sha256"]:
            raise RuntimeError(f"{weights} has sha256 {digest}, not {params['weights_sha256']}")
        self._net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        self._labels = [line.strip() for line in names.read_text().splitlines() if line.strip()]
        self._output_layers = list(self._net.getUnconnectedOutLayersNames())

        cv2.setNumThreads(int(params.get("threads", "2")))
        self._use_backend(args.get("model_instance_kind", "CPU"))

        self._size = int(params["input_size"])
        self._default_min_score = float(params["default_min_score"])
        self._nms_iou = float(params["nms_iou"])
        output = pb_utils.get_output_config_by_name(config, "DETECTIONS")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        score_input = pb_utils.get_input_config_by_name(config, "MIN_SCORE")
        self._score_dtype = pb_utils.triton_string_to_numpy(score_input["data_type"])
        self._logger.log_info(
            f"object_detection: {params['model_version_tag']} with {len(self._labels)} classes, "
            f"outputs {self._output_layers}"
        )

    def _use_backend(self, instance_kind: str) -> None:
        if instance_kind == "GPU" and cv2.cuda.getCudaEnabledDeviceCount() > 0:
            self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
            return
        if instance_kind == "GPU":
            # opencv-python-headless from PyPI is built without CUDA.
            self._logger.log_warn("object_detection: OpenCV has no CUDA support; running on CPU")
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

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
        images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy().reshape(-1)
        min_scores = read_min_scores(
            request, len(images), self._default_min_score, self._score_dtype
        )
        answers = []
        for position, (encoded, min_score) in enumerate(zip(images, min_scores, strict=True)):
            image = decode_image(encoded, position)
            detections = self._detect(image, float(min_score))
            answers.append(json.dumps(detections, separators=(",", ":")).encode("utf-8"))
        array = np.array(answers, dtype=self._output_dtype).reshape(-1, 1)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("DETECTIONS", array)])

    def _detect(self, image: np.ndarray, min_score: float) -> list[dict]:
        height, width = image.shape[:2]
        size = self._size
        scale = min(size / width, size / height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        canvas = np.full((size, size, 3), _PAD_VALUE, dtype=np.uint8)
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = cv2.resize(
            image, (new_w, new_h), interpolation=cv2.INTER_LINEAR
        )
        blob = cv2.dnn.blobFromImage(canvas, 1 / 255.0, (size, size), swapRB=True, crop=False)
        self._net.setInput(blob)
        # Rows are [cx, cy, w, h, objectness, 80 class scores already scaled by objectness].
        rows = np.concatenate(self._net.forward(self._output_layers), axis=0)
        class_scores = rows[:, 5:]
        classes = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(len(classes)), classes]
        keep = scores >= min_score
        rows, classes, scores = rows[keep], classes[keep], scores[keep]
        if len(rows) == 0:
            return []

        # Undo the letterbox: network coordinates -> fractions of the original image.
        cx = (rows[:, 0] * size - pad_x) / new_w
        cy = (rows[:, 1] * size - pad_y) / new_h
        half_w = rows[:, 2] * size / new_w / 2
        half_h = rows[:, 3] * size / new_h / 2
        boxes = np.clip(np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1), 0, 1)
        corners = boxes * np.array([width, height, width, height], dtype=np.float32)
        pixel_xywh = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)
        kept = cv2.dnn.NMSBoxesBatched(
            pixel_xywh.tolist(), scores.tolist(), classes.tolist(), min_score, self._nms_iou
        )
        detections = [
            {
                "label": self._labels[int(classes[i])],
                "score": round(float(scores[i]), 4),
                "box": [round(float(v), 4) for v in boxes[i]],
            }
            for i in np.asarray(kept, dtype=np.int64).reshape(-1)
        ]
        detections.sort(key=lambda detection: -detection["score"])
        return detections

    def finalize(self) -> None:
        self._net = None
