"""A trained run ready for video files: restore it from a workdir, sample clips as evaluation does.

Shared by `predict` (top-k labels), `features` (endpoint features) and `export` (SavedModel).
A file is decoded with PyAV at the frame rate and short side its training dataset was stored
at, then cut into the evaluation views (`config.data.eval_num_clips` uniformly spaced clips
of `num_frames` at `stride`, `eval_num_crops` square crops resized to `crop_size`) with the
same `video_ops` functions the eval pipeline uses; logits are averaged over the views, as
evaluation averages them per video. The one difference from the eval pipeline: its frames went
through JPEG (the dataset stores JPEGs), these are cropped straight from the decoded video.
A flow run (`config.data.modality == "flow"`) computes its input with our TV-L1
(data/builders/flow_frames.py, the flow configs' computation, uint8 levels without the JPEG
step), for the flow fields its views use only: each picked field's frame and its successor are
decoded, nothing else.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
from typing import Any, Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging as absl_logging

from video_s3d import checkpointing, normalization, steps, train_state, workdirs
from video_s3d.compile_policy import CompilePolicy
from video_s3d.data.builders import video_files
from video_s3d.errors import UserError, UserFileError

VIDEO_EXTENSIONS = (
    ".mp4",
    ".webm",
    ".avi",
    ".mkv",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ogv",
    ".flv",
    ".wmv",
    ".3gp",
)
UnreadableVideo = video_files.UnreadableVideo

# Views per forward pass: bounds memory on many-clip configs; one compiled shape per run.
MAX_VIEWS_PER_BATCH = 16


@dataclasses.dataclass(frozen=True)
class VideoFormat:
    """How the training dataset stored its videos: what a new file is decoded to."""

    fps: float | None  # None: as recorded
    short_side: int | None  # None: as recorded
    central_fraction: float  # eval crop side as a fraction of the short side
    short_clip: str = "repeat_last"  # how a video shorter than a clip is filled (video_ops)
    # A flow dataset's TV-L1 setting (TVL1Params fields; None: OpenCV's defaults).
    flow_params: dict | None = None


def _where_is_the_run(path: str) -> tuple[str, int | None]:
    """(workdir, step or None for the latest) from a workdir, its checkpoints/ or a step folder."""
    path = os.path.abspath(path.rstrip("/") or "/")
    hint = (
        "point --workdir at a training (or import_weights) run: the folder holding "
        "config.json and checkpoints/, its checkpoints/ folder, or one step folder in it."
    )
    if not os.path.isdir(path):
        raise UserFileError(f"--workdir={path} is not a folder; {hint}")
    name, parent = os.path.basename(path), os.path.dirname(path)
    if os.path.isdir(os.path.join(path, "checkpoints")):
        workdir, step = path, None
    elif name == "checkpoints":
        workdir, step = parent, None
    elif name.isdigit() and os.path.basename(parent) == "checkpoints":
        workdir, step = os.path.dirname(parent), int(name)
    else:
        raise UserFileError(f"--workdir={path} holds no checkpoints/ folder; {hint}")
    if not os.path.isfile(os.path.join(workdir, "config.json")):
        raise UserFileError(
            f"{workdir} has checkpoints but no config.json (the resolved "
            f"config video_s3d.main writes); {hint}"
        )
    return workdir, step


def load_config(workdir: str) -> ml_collections.ConfigDict:
    # A malformed config.json is one sentence naming the file, not a JSON traceback.
    return ml_collections.ConfigDict(workdirs.read_config_json(workdir))


def class_names_of(
    info: dict[str, Any], config: ml_collections.ConfigDict, num_classes: int
) -> list[str]:
    """The checkpoint's own names, else the dataset's (if readable here), else class_<i>."""
    names = info.get("class_names")
    if names and len(names) == num_classes:
        return [str(n) for n in names]
    try:  # checkpoints written before the names were recorded
        from video_s3d import inputs

        names = list(inputs.dataset_info(config.data).class_names)
        if len(names) == num_classes:
            return [str(n) for n in names]
    except Exception:  # noqa: BLE001 - any failure here just means "names unknown"
        pass
    return [f"class_{i}" for i in range(num_classes)]


def video_format_of(data: ml_collections.ConfigDict) -> VideoFormat:
    """The decode settings of the dataset `data.name` (its TFDS builder config)."""
    from video_s3d.data import sources

    if data.name == "in_memory":  # random clips, no stored format: keep the file as it is
        return VideoFormat(fps=None, short_side=None, central_fraction=1.0)
    try:
        source = sources.get(data.name, data.get("data_dir"))
    except UserError:  # a dataset unknown or unbuilt here: decode as most datasets store
        return VideoFormat(fps=None, short_side=256, central_fraction=0.875)
    builder_config = getattr(getattr(source, "builder", None), "builder_config", None)
    fps, short_side = None, 256  # DMVR shards: the usual 256 short side, frame rate unknown
    if builder_config is not None:
        if hasattr(builder_config, "image_size"):  # synthetic builders: square frames, 25 fps
            from video_s3d.data.builders import synthetic_base

            fps, short_side = synthetic_base.FPS, int(builder_config.image_size)
        else:
            fps = getattr(builder_config, "fps", None)
            short_side = getattr(builder_config, "short_side", 256)
    return VideoFormat(
        fps=fps,
        short_side=short_side,
        central_fraction=float(source.eval_central_fraction),
        short_clip=source.short_clip,
        flow_params=getattr(builder_config, "flow_params", None),
    )


@dataclasses.dataclass
class Run:
    """A restored classifier and everything needed to feed it a video file."""

    workdir: str
    step: int
    config: ml_collections.ConfigDict
    model: nn.Module
    variables: dict[str, Any]
    class_names: list[str]
    video_format: VideoFormat
    num_clips: int
    num_crops: int
    step_choice: str = "as asked"  # how `step` was picked (steps.resolve)
    _forward: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def modality(self) -> str:
        return self.config.data.get("modality", None) or "rgb"

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(T, H, W, C) of one clip: C is 3, or 2 for a flow run."""
        size = int(self.config.data.crop_size)
        channels = 2 if self.modality == "flow" else 3
        return int(self.config.data.num_frames), size, size, channels

    def describe(self) -> str:
        t, s = self.input_shape[:2]
        return (
            f"{self.config.model.name} at step {self.step} ({self.step_choice}; "
            f"{self.workdir}), {self.num_classes} "
            f"classes; per video {self.num_clips} clip(s) x {self.num_crops} crop(s) of {t} "
            f"frames (stride {self.config.data.stride}) at {s}x{s}"
        )

    # --------------------------------------------------------------------- input
    @property
    def short_clip(self) -> str:
        """How a video shorter than one clip is filled: the run's choice, else its dataset's."""
        return self.config.data.get("short_clip", None) or self.video_format.short_clip

    def read(self, path: str) -> "SelectedFrames":
        """The video's frames as the dataset stored them (UnreadableVideo if it cannot be read),
        of which only those the evaluation views use are decoded to pixels: memory does not
        grow with the video's length. Indexes like a uint8 [N, H, W, 3] array."""
        fmt = self.video_format
        frames = read_frames_for_views(
            path,
            fps=fmt.fps,
            short_side=fmt.short_side,
            num_frames=int(self.config.data.num_frames),
            stride=int(self.config.data.stride),
            num_clips=self.num_clips,
            short_clip=self.short_clip,
            flow_pairs=self.modality == "flow",
        )
        return self.flow_levels(frames) if self.modality == "flow" else frames

    def flow_levels(self, frames) -> "SelectedFrames":
        """The flow input [T - 1, H, W, 2] (uint8 levels) of RGB frames [T, H, W, 3] (an array
        or SelectedFrames), of which only the fields the evaluation views use are computed."""
        return flow_levels_for_views(
            frames,
            self.video_format.flow_params,
            num_frames=int(self.config.data.num_frames),
            stride=int(self.config.data.stride),
            num_clips=self.num_clips,
            short_clip=self.short_clip,
        )

    def views(self, frames: np.ndarray) -> np.ndarray:
        """uint8 [clips x crops, T, S, S, 3]: the evaluation views of one video (`classify`
        normalises them on the device)."""
        return evaluation_views(
            frames,
            num_frames=int(self.config.data.num_frames),
            stride=int(self.config.data.stride),
            crop_size=int(self.config.data.crop_size),
            num_clips=self.num_clips,
            num_crops=self.num_crops,
            central_fraction=self.video_format.central_fraction,
            short_clip=self.short_clip,
            flow=self.modality == "flow",
        )

    # ------------------------------------------------------------------- forward
    def endpoint_names(self) -> list[str]:
        """Every name `model.apply(..., return_endpoints=True)` returns (shapes only, no compute)."""
        shape = (1,) + self.input_shape
        _, endpoints = jax.eval_shape(
            lambda v, x: self.model.apply(v, x, train=False, return_endpoints=True),
            self.variables,
            jax.ShapeDtypeStruct(shape, jnp.float32),
        )
        return list(endpoints)

    def _compiled(self, endpoint: str | None):
        if endpoint not in self._forward:
            model = self.model
            input_normalization = normalization.from_config(self.config.data)

            def forward(variables, video):
                video = input_normalization.model_input(video)
                if endpoint is None:
                    return model.apply(variables, video, train=False), None
                logits, endpoints = model.apply(
                    variables, video, train=False, return_endpoints=True
                )
                feature = endpoints[endpoint].astype(jnp.float32)
                # Pooled over time and space: one vector per clip.
                return logits, jnp.mean(feature, axis=tuple(range(1, feature.ndim - 1)))

            self._forward[endpoint] = CompilePolicy.from_config(self.config).jit(forward)
        return self._forward[endpoint]

    def classify(
        self, views: np.ndarray, endpoint: str | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Video-level logits [classes] (mean over views) and, if asked, the endpoint feature [C]."""
        forward = self._compiled(endpoint)
        count = len(views)
        batch = min(count, MAX_VIEWS_PER_BATCH)
        logits, features = [], []
        for start in range(0, count, batch):
            chunk = views[start : start + batch]
            real = len(chunk)
            if real < batch:  # pad to the compiled shape
                chunk = np.concatenate(
                    [chunk, np.zeros((batch - real,) + chunk.shape[1:], chunk.dtype)]
                )
            out_logits, out_features = forward(self.variables, chunk)
            logits.append(np.asarray(out_logits)[:real])
            if out_features is not None:
                features.append(np.asarray(out_features)[:real])
        mean_logits = np.concatenate(logits).astype(np.float64).mean(0)
        mean_features = np.concatenate(features).mean(0) if features else None
        return mean_logits, mean_features


def evaluation_views(
    frames: np.ndarray,
    *,
    num_frames: int,
    stride: int,
    crop_size: int,
    num_clips: int,
    num_crops: int,
    central_fraction: float,
    short_clip: str = "repeat_last",
    flow: bool = False,
) -> np.ndarray:
    """uint8: the eval pipeline's views of one decoded video (`pipeline.eval_dataset`'s
    sampling); `flow`: the frames are flow levels, whose resize scales the displacements."""
    from video_s3d.data import video_ops  # TensorFlow, imported only when videos are read

    clips = video_ops.eval_windows(len(frames), num_frames, stride, num_clips, short_clip).numpy()
    windows = video_ops.eval_crop_windows(
        np.array(frames.shape[1:3], np.int32), central_fraction, num_crops
    ).numpy()
    views = []
    for clip in clips:
        selected = frames[clip]
        for y, x, height, width in windows:
            cropped = selected[:, y : y + height, x : x + width]
            view = video_ops.resize(cropped, crop_size)
            if flow:
                view = video_ops.scale_flow(view, crop_size / width, crop_size / height)
            views.append(view.numpy())
    return np.stack(views)


# ------------------------------------------------------- decoding only the frames used
class SelectedFrames:
    """The frames of one video, only some of them decoded: indexes like uint8 [N, H, W, 3].

    `len()` and `shape` are the whole video's; indexing with the frame numbers that were
    decoded returns them (any other number is a bug in the caller: KeyError).
    """

    def __init__(self, length: int, frames: dict[int, np.ndarray]):
        self._length = int(length)
        self._frames = frames
        first = next(iter(frames.values()))
        self.shape = (self._length,) + first.shape
        self.dtype = first.dtype

    def __len__(self) -> int:
        return self._length

    @property
    def num_decoded(self) -> int:
        return len(self._frames)

    def __getitem__(self, index) -> np.ndarray:
        index = np.asarray(index)
        picked = [self._frames[int(i)] for i in index.reshape(-1)]
        return (
            np.stack(picked).reshape(index.shape + self.shape[1:])
            if picked
            else np.zeros(index.shape + self.shape[1:], self.dtype)
        )


def _output_frame_count(num_source: int, source_fps: float, out_fps: float) -> int:
    """How many frames `video_files.read_video` returns for `num_source` source frames
    (the same arithmetic: output k shows source frame round(k * source_fps / out_fps))."""
    filled = 0
    while round(filled * source_fps / out_fps) <= num_source - 1:
        filled += 1
    return max(filled, round(num_source * out_fps / source_fps))


def read_frames_for_views(
    path: str,
    *,
    fps: float | None,
    short_side: int | None,
    num_frames: int,
    stride: int,
    num_clips: int,
    short_clip: str = "repeat_last",
    flow_pairs: bool = False,
) -> SelectedFrames:
    """`read_video`'s frames of `path`, decoding to pixels only those `eval_windows` picks;
    `flow_pairs`: the windows pick flow fields (one fewer than frames), and field k needs
    frames k and k + 1 (`flow_levels_for_views`).

    A first pass counts the video's packets without decoding them; the clip windows follow
    from that count exactly as from the decoded frames. Frames are still decoded in order
    (codecs need their predecessors) but only the picked ones are converted, resized and
    kept, so memory is bounded by the views, not by the video's length. Should the count
    disagree with the frames actually decoded (a damaged file), the whole video is read as
    before: the result is always `read_video`'s frames at the picked positions.
    """
    from video_s3d.data import video_ops  # TensorFlow: the eval pipeline's own windows

    with video_files.open_video(path) as (container, stream, source_fps):
        num_source = sum(1 for packet in container.demux(stream) if packet.size)
    if num_source == 0:
        raise UnreadableVideo("no decodable frame")
    out_fps = float(fps) if fps else source_fps
    length = _output_frame_count(num_source, source_fps, out_fps)
    if flow_pairs and length < 2:
        raise UnreadableVideo("a single frame has no flow")
    count = length - 1 if flow_pairs else length  # what the clips are cut from
    windows = video_ops.eval_windows(count, num_frames, stride, num_clips, short_clip).numpy()
    if flow_pairs:
        windows = np.concatenate([windows, windows + 1])
    span = (num_frames - 1) * stride + 1
    if count < span:
        absl_logging.warning(
            "%s has %d %s, fewer than one clip's %d (%d at stride %d): "
            "the clip is filled without going back in time (short_clip=%s), as evaluation does.",
            path,
            count,
            "flow fields" if flow_pairs else "frames",
            span,
            num_frames,
            stride,
            short_clip,
        )
    wanted: dict[int, list[int]] = {}  # source frame -> the output frames that show it
    for k in sorted(set(windows.reshape(-1).tolist())):
        wanted.setdefault(min(round(k * source_fps / out_fps), num_source - 1), []).append(k)
    frames: dict[int, np.ndarray] = {}
    decoded = 0
    try:
        with video_files.open_video(path) as (container, stream, _):
            # Decoded to the end (pixels dropped) so that the count is checked, not assumed.
            for source_index, frame in enumerate(container.decode(stream)):
                decoded += 1
                if source_index in wanted:
                    image = video_files.to_rgb(frame, short_side)
                    frames.update((k, image) for k in wanted[source_index])
    except UnreadableVideo:
        decoded = -1  # fall back to read_video, which names the problem
    if decoded != num_source:
        decoded, _ = video_files.read_video(path, fps=fps, short_side=short_side)
        return SelectedFrames(len(decoded), dict(enumerate(decoded)))
    return SelectedFrames(length, frames)


def flow_levels_for_views(
    frames,
    flow_params: dict | None,
    *,
    num_frames: int,
    stride: int,
    num_clips: int,
    short_clip: str = "repeat_last",
) -> SelectedFrames:
    """The T - 1 flow fields of RGB frames [T, H, W, 3] (an array, or SelectedFrames holding
    each picked field's two frames), uint8 levels as the run's flow dataset stores them
    (data/builders/flow_frames.py, without the JPEG step; `flow_params`: its TV-L1 setting),
    computed only for the fields the evaluation views (`eval_windows`) pick."""
    from video_s3d.data import video_ops
    from video_s3d.data.builders import flow_frames

    if len(frames) < 2:
        raise UnreadableVideo("a single frame has no flow")
    fields = len(frames) - 1
    windows = video_ops.eval_windows(fields, num_frames, stride, num_clips, short_clip).numpy()
    picked = np.array(sorted(set(windows.reshape(-1).tolist())))
    levels = flow_frames.to_levels(
        flow_frames.compute_pairs(frames[picked], frames[picked + 1], flow_params)
    )
    return SelectedFrames(fields, dict(zip(picked.tolist(), levels)))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def load_run(
    checkpoint: str,
    *,
    step: str | int | None = None,
    num_clips: int | None = None,
    num_crops: int | None = None,
) -> Run:
    """Rebuilds the model from the workdir's resolved config and restores its checkpoint.

    `checkpoint`: a workdir, its checkpoints/ folder or checkpoints/<step>; `step`: "best"
    (the default: best validation accuracy, else the latest), "latest" or a step number
    (`video_s3d.steps`). A step folder and another `step` contradict each other: refused.
    """
    workdir, path_step = _where_is_the_run(checkpoint)
    which = steps.parse(step) if step is not None else path_step
    if path_step is not None and step is not None and which != path_step:
        raise UserError(f"--workdir names step {path_step} but --step={step}; give one.")
    which = steps.BEST if which is None else which
    config = load_config(workdir)
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns that read-only means read-only
    try:
        ckpt = checkpointing.Checkpoints(workdir, read_only=True)
    finally:
        absl_logging.set_verbosity(verbosity)
    try:
        step, how = steps.resolve(ckpt, which, workdir)
        info = ckpt.run_info(step) or {}
        if info.get("model") and info["model"] != config.model.name:
            raise UserError(
                f"{workdir}/config.json names model {config.model.name!r} but checkpoint step "
                f"{step} holds {info['model']!r}; restore the run's own config.json."
            )
        num_classes = int(info.get("num_classes") or config.data.num_classes)
        config = _for_inference(config)
        model = train_state.create_model(config, num_classes)
        shapes = jax.eval_shape(
            lambda r: train_state.init_variables(model, config, r), jax.random.key(0)
        )
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        variables = ckpt.restore_model(step, checkpointing.abstract_like(shapes, device))
    finally:
        ckpt.close()
    num_clips = int(config.data.eval_num_clips) if num_clips is None else int(num_clips)
    num_crops = int(config.data.eval_num_crops) if num_crops is None else int(num_crops)
    if num_clips < 1 or num_crops not in (1, 3):
        raise UserError(f"num_clips={num_clips} must be >= 1 and num_crops={num_crops} 1 or 3.")
    return Run(
        workdir=workdir,
        step=int(step),
        config=config,
        model=model,
        variables=variables,
        class_names=class_names_of(info, config, num_classes),
        video_format=video_format_of(config.data),
        num_clips=num_clips,
        num_crops=num_crops,
        step_choice=how,
    )


def _for_inference(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """One device, no mesh: BatchNorm needs no axis name (running averages are used anyway)."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.sync_batch_norm = False
    return config


# ----------------------------------------------------------------------- which files
def list_videos(spec: str, flag: str = "--video") -> list[tuple[str, str | None]]:
    """(path, label) for a file, a folder (searched recursively) or a glob pattern.

    Labels follow the folder-per-class layout: in a folder, a file's top-level subfolder names
    its class (files directly in it have none); for a glob, the parent folder does when the
    matches lie in more than one folder.
    """
    if os.path.isfile(spec):
        return [(spec, None)]
    if os.path.isdir(spec):
        found = []
        for root, dirs, files in os.walk(spec):
            dirs.sort()
            for name in sorted(files):
                if name.lower().endswith(VIDEO_EXTENSIONS):
                    path = os.path.join(root, name)
                    relative = os.path.relpath(path, spec).split(os.sep)
                    found.append((path, relative[0] if len(relative) > 1 else None))
        if not found:
            raise UserFileError(
                f"{flag}={spec} holds no video files (looked for "
                f"{', '.join(VIDEO_EXTENSIONS)}); point it at videos."
            )
        return found
    matches = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
    if not matches:
        raise UserFileError(
            f"{flag}={spec} matches no file; give a video file, a folder of "
            f"videos or a glob pattern such as 'videos/*/*.mp4'."
        )
    parents = {os.path.dirname(os.path.abspath(p)) for p in matches}
    if len(parents) > 1:
        return [(p, os.path.basename(os.path.dirname(os.path.abspath(p)))) for p in matches]
    return [(p, None) for p in matches]


def iterate_videos(
    run: Run, videos: list[tuple[str, str | None]]
) -> Iterator[tuple[int, str, str | None, np.ndarray | None, str | None]]:
    """(index, path, label, views or None, error or None) per file, decoding one at a time."""
    for index, (path, label) in enumerate(videos):
        try:
            yield index, path, label, run.views(run.read(path)), None
        except UnreadableVideo as error:
            yield index, path, label, None, str(error)


def argument_parser(module: str, description: str) -> argparse.ArgumentParser:
    """The parser every run-reading CLI starts from: its usage line, --workdir and --step."""
    from video_s3d import arguments

    parser = arguments.parser(module, description)
    arguments.add_run(parser)
    return parser


def setup_process() -> None:
    """Quiet libraries and keep TensorFlow off the accelerators (JAX owns them)."""
    from video_s3d import runtime

    absl_logging.set_verbosity(absl_logging.WARNING)
    runtime.quiet_library_notices()
    runtime.hide_accelerators_from_tf()
