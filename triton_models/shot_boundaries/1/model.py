"""Shot boundaries in a strip of per-frame thumbnails, with PySceneDetect's detectors.

One request item is one strip: the ``.npz`` bytes that the chunker writes (``frames`` uint8
(n, 27, 48, 3) RGB, ``times`` float64 (n,) presentation times in seconds). Its answer is a
UTF-8 JSON document ``{"cuts": [{"frame", "time", "kind"}], "shots": [{"start", "end",
"start_frame", "end_frame"}]}``; frames index the strip, times come from its ``times``, and a
shot covers frames ``[start_frame, end_frame)``.

Two detectors run side by side over the thumbnails:

* ``AdaptiveDetector`` finds hard cuts: a frame's HSV content change must be large in absolute
  terms (``min_content_val``) and against its neighbours (``adaptive_threshold``), which keeps
  camera motion from counting as a cut.
* ``ThresholdDetector`` finds transitions through black (fade-out, black, fade-in) and places
  one boundary in the middle of the black, as PySceneDetect's published scene lists do.

The two are combined by two rules. A hard cut into or out of a black frame is one edge of a
black interval, which the threshold detector already reports once, so it is dropped. Black at
the very start of the video (a strip whose first frame is presented within ``video_start_s``)
is not a transition: there is no shot before it.

A strip is usually one chunk of a video, so its edges matter. Both detectors refuse cuts
within ``min_scene_len`` of their first frame, and the adaptive one scores a frame against
``window_width`` neighbours on each side; so the strip is padded in front with copies of its
first frame and mirrored at both edges (see ``_mirror_padded``). A cut on a strip's very
first frame cannot be seen at all: it is the chunk boundary itself.
Gradual dissolves are not reported (kind ``"dissolve"`` is reserved for a neural detector).
"""

from __future__ import annotations

import io
import itertools
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
from scenedetect import AdaptiveDetector, FrameTimecode, SceneDetector, ThresholdDetector

# The helpers every model shares live beside the models (triton_models/_shared).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_shared"))
from vip_triton import InvalidInput, check_distribution, parameters  # noqa: E402


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = parameters(config)
        check_distribution(params["detector_distribution"])
        self._size = (int(params["strip_height"]), int(params["strip_width"]))
        self._adaptive_threshold = float(params["adaptive_threshold"])
        self._min_content_val = float(params["min_content_val"])
        self._window_width = int(params["window_width"])
        self._fade_threshold = float(params["fade_threshold"])
        self._min_scene_len_s = float(params["min_scene_len_s"])
        self._video_start_s = float(params["video_start_s"])
        output = pb_utils.get_output_config_by_name(config, "RESULT")
        self._output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        if args.get("model_instance_kind", "CPU") == "GPU":
            pb_utils.Logger.log_warn("shot_boundaries: PySceneDetect has no GPU path; using CPU")
        pb_utils.Logger.log_info(f"shot_boundaries: {params['model_version_tag']}")

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
        strips = pb_utils.get_input_tensor_by_name(request, "STRIP").as_numpy().reshape(-1)
        answers = []
        for position, data in enumerate(strips):
            frames, times = self._decode(data, position)
            result = self._detect(frames, times)
            answers.append(json.dumps(result, separators=(",", ":")).encode("utf-8"))
        array = np.array(answers, dtype=self._output_dtype).reshape(-1, 1)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("RESULT", array)])

    # Input ----------------------------------------------------------------------------------
    def _decode(self, data: object, position: int) -> tuple[np.ndarray, np.ndarray]:
        where = f"STRIP[{position}]"
        if not isinstance(data, bytes) or not data:
            raise InvalidInput(f"{where} is empty; send the .npz bytes of a thumbnail strip")
        try:
            loaded = np.load(io.BytesIO(data), allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError(f"it holds a single {type(loaded).__name__}, not an archive")
            with loaded as archive:
                names = set(archive.files)
                if not {"frames", "times"} <= names:
                    raise ValueError(f"it holds {sorted(names)}, not 'frames' and 'times'")
                frames, times = archive["frames"], archive["times"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise InvalidInput(
                f"{where} is not a readable .npz ({len(data)} bytes starting {data[:8]!r}): {error}"
            ) from error
        height, width = self._size
        if frames.dtype != np.uint8 or frames.shape[1:] != (height, width, 3):
            raise InvalidInput(
                f"{where}: frames must be uint8 (n, {height}, {width}, 3), got {frames.dtype} "
                f"{frames.shape}"
            )
        if times.dtype != np.float64 or times.shape != (len(frames),):
            raise InvalidInput(
                f"{where}: times must be float64 ({len(frames)},), got {times.dtype} {times.shape}"
            )
        if len(frames) == 0:
            raise InvalidInput(f"{where} has no frames; a strip needs at least one")
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
            raise InvalidInput(f"{where}: times must be finite and in presentation order")
        return frames, times

    # Detection ------------------------------------------------------------------------------
    def _detect(self, frames: np.ndarray, times: np.ndarray) -> dict:
        count = len(frames)
        steps = np.diff(times)
        steps = steps[steps > 0]
        frame_step = float(np.median(steps)) if len(steps) else 0.0
        cuts = self._boundaries(frames, times, frame_step) if count > 1 else []
        edges = [0, *(frame for frame, _ in cuts), count]
        shots = []
        for start, end in itertools.pairwise(edges):
            end_time = times[end] if end < count else times[-1] + frame_step
            shots.append(
                {
                    "start": float(times[start]),
                    "end": float(end_time),
                    "start_frame": start,
                    "end_frame": end,
                }
            )
        return {
            "cuts": [
                {"frame": frame, "time": float(times[frame]), "kind": kind} for frame, kind in cuts
            ],
            "shots": shots,
        }

    def _boundaries(
        self, frames: np.ndarray, times: np.ndarray, frame_step: float
    ) -> list[tuple[int, str]]:
        count = len(frames)
        fps = 1.0 / frame_step if frame_step > 0 else 25.0
        min_len = max(1, round(self._min_scene_len_s * fps))
        bgr = np.ascontiguousarray(frames[..., ::-1])  # PySceneDetect reads BGR
        window = self._window_width
        hard_cuts = _run(
            AdaptiveDetector(
                adaptive_threshold=self._adaptive_threshold,
                min_content_val=self._min_content_val,
                window_width=window,
                min_scene_len=min_len,
            ),
            _mirror_padded(bgr, before=max(min_len, window), after=window),
            lead=max(min_len, window),
            fps=fps,
        )
        fades = _run(
            ThresholdDetector(threshold=self._fade_threshold, min_scene_len=min_len),
            [bgr[0]] * min_len + list(bgr),
            lead=min_len,
            fps=fps,
        )

        dark = frames.reshape(count, -1).mean(axis=1) < self._fade_threshold
        kept = {
            frame: "cut"
            for frame in hard_cuts
            if 0 < frame < count and not (dark[frame - 1] or dark[frame])
        }
        opens_video = times[0] <= self._video_start_s
        bright = np.flatnonzero(~dark)
        first_bright = int(bright[0]) if len(bright) else count
        for frame in fades:
            if opens_video and frame < first_bright:
                continue  # black before the first shot, not a transition
            # A strip that starts in black puts the middle of the black before its first frame.
            kept.setdefault(min(max(frame, 1), count - 1), "fade")
        return sorted(kept.items())

    def finalize(self) -> None:
        pass


def _run(detector: SceneDetector, images: list[np.ndarray], lead: int, fps: float) -> list[int]:
    """Feed ``images`` to ``detector``; its cuts as strip frame numbers (``lead`` padding
    frames come first)."""
    cuts: list[int] = []
    for index, image in enumerate(images):
        found = detector.process_frame(FrameTimecode(index, fps=fps), image)
        cuts += [timecode.frame_num - lead for timecode in found]
    return cuts


def _mirror_padded(frames: np.ndarray, before: int, after: int) -> list[np.ndarray]:
    """The frames with copies of the first one in front (both detectors refuse cuts within
    ``min_scene_len`` of their first frame) and mirrored edges (..., 2, 1 | 0, 1, ... and
    ... n-2, n-1 | n-2, n-3 ...), so that the adaptive detector compares the strip's first
    and last frames with motion like their own: copies would look motionless and make any
    motion at a chunk edge stand out as a cut."""
    count = len(frames)
    mirrored = min(after, count - 1)
    head = [frames[0]] * (before - mirrored) + [frames[k] for k in range(mirrored, 0, -1)]
    tail = [frames[count - 2 - k] for k in range(mirrored)]
    tail += [frames[-1]] * (after - mirrored)
    return head + list(frames) + tail
