"""Train and eval input pipelines: host-local numpy batches for the trainer and the evaluator.

Both are a named sequence of small steps over raw elements from `sources` (a video's per-frame
JPEG strings, its label and its index in the split):

    train: read (this host's videos) -> repeat -> sample window -> shuffle
           -> decode+crop (one random window for all frames) -> [resize] -> batch
           (+ a per-clip flip flag: the jitted step mirrors flagged clips on the device)
    eval:  read (this host's videos) -> sample N clips -> decode+crop (centre / 3 crops)
           -> [resize] -> [reverse time] -> pad with masked examples -> batch

Batches leave as uint8 (a quarter of float32's bytes); the jitted programs normalise them on
the device (`video_s3d.normalization`). `modality="flow"` reads a flow config instead (uint8
[..., 2] levels (f + 1) * 127.5 of the TV-L1 flow, builders/flow_frames.py): the same steps,
with a resize scaling the displacements by its factors and a mirror negating x. A resize runs only where the crop is not already
crop_size square: never for the paper's fixed train crop (`train_crop="paper"`) nor for the
224 centre crop of 256-short-side frames.

Frames are chosen before decoding, and only the cropped region of each JPEG is decoded.
Randomness is stateless, seeded from (seed, host, position in this host's stream), so the
pipeline is deterministic for a seed however many threads run the maps, and the train iterator
resumes exactly from `save`/`restore`.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Iterator

import numpy as np
import tensorflow as tf

from video_s3d.data import sources, video_ops
from video_s3d.data.sources import DatasetInfo
from video_s3d.errors import UserError, UserFileError

__all__ = [
    "DatasetInfo",
    "dataset_info",
    "ensure_built",
    "train_dataset",
    "train_iterator",
    "eval_dataset",
    "eval_batches",
    "all_frames_eval_dataset",
    "TrainIterator",
]

# Purposes folded into an example's seed, one per random decision.
_TEMPORAL, _CROP, _FLIP = 0, 1, 2

MODALITIES = ("rgb", "flow")  # `config.data.modality`: what the dataset stores and the model sees
CHANNELS = {"rgb": 3, "flow": 2}

# Training crops (`config.data.train_crop`).
PAPER_CROP = "paper"  # random crop_size square of the stored frames, no resize
RANDOM_RESIZED_CROP = "random_resized"  # random area and aspect, resized to crop_size
TRAIN_CROPS = (PAPER_CROP, RANDOM_RESIZED_CROP)


def dataset_info(name: str, data_dir: str | None = None) -> DatasetInfo:
    """Classes, split sizes, whether flipping is allowed and the time-reversal partners."""
    return sources.get(name, data_dir).info()


def ensure_built(name: str, data_dir: str | None = None) -> None:
    """Builds a generated dataset if absent; a FileNotFoundError saying how to build a real one."""
    source = sources.get(name, data_dir)
    if source.is_built():
        return
    if not source.generated:
        raise source.not_built_error()
    logging.warning(
        "Generating %s into %s (under a minute on a few cores; progress below)...",
        name,
        source.builder.data_dir,
    )
    source.build()


# ---------------------------------------------------------------------------- per-host split


def _host_range(num_videos: int, process_index: int, process_count: int) -> tuple[int, int, int]:
    """This host's videos [start, stop) of the split (contiguous, disjoint across hosts), and the
    most videos any host gets."""
    if not 0 <= process_index < process_count:
        raise UserError(f"process_index {process_index} must be in [0, {process_count}).")
    start = num_videos * process_index // process_count
    stop = num_videos * (process_index + 1) // process_count
    return start, stop, math.ceil(num_videos / process_count)


def _resolve_host(process_index, process_count) -> tuple[int, int]:
    """Defaults to this JAX process; imported here so the pipeline alone needs no JAX."""
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    return process_index, process_count


# ---------------------------------------------------------------------------- train


def train_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    split: str = "train",
    batch_size: int,
    num_frames: int,
    stride: int = 1,
    crop_size: int,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
    flip: bool | None = None,
    crop_area_range: tuple[float, float] | None = None,
    crop_aspect_range=(3 / 4, 4 / 3),
    train_crop: str = RANDOM_RESIZED_CROP,
    short_clip: str | None = None,
    flip_on_device: bool = True,
    shuffle_buffer: int = 256,
    fused_decode: bool = True,
    modality: str = "rgb",
    threads: int | None = None,
) -> tf.data.Dataset:
    """Infinite dataset of host-local batches {'video': u8 [B,T,S,S,3], 'label': i32 [B],
    'flip': bool [B]} ([B,T,S,S,2] flow levels with `modality="flow"`).

    `flip=None` flips at random where the dataset allows it; `flip=True` on a dataset whose
    classes depend on left/right is refused. With `flip_on_device` (the default) the frames are
    left as decoded and 'flip' says which clips the consumer mirrors (`apply_flips`; train.py
    does it inside the step, where it is cheaper); otherwise the host mirrors them and 'flip'
    is all False. `train_crop="paper"`: a crop_size square at a random
    position of the stored frames, decoded and never resized (frames whose short side is below
    crop_size: the largest square, scaled up). `"random_resized"`: the crop covers a random
    fraction of the frame in `crop_area_range` (None: the dataset's default, (0.4, 1) for real
    videos, (0.7, 1) for synthetic_motion whose object must stay in view) with aspect in
    `crop_aspect_range`, resized to crop_size. `short_clip` (None: the dataset's default) says
    how a video shorter than the window is filled (video_ops.SHORT_CLIP_MODES); never by
    jumping back in time. `fused_decode=False` decodes whole frames then crops (slower; kept
    for the benchmark). The shuffle buffer holds sampled clips (T JPEGs each), and is saved
    with the iterator: keep it modest for big frames. `threads` caps tf.data's thread pool
    (None: one per core); the batches do not depend on it.
    """
    _check_positive(
        batch_size=batch_size, num_frames=num_frames, stride=stride, crop_size=crop_size
    )
    if train_crop not in TRAIN_CROPS:
        raise UserError(f"train_crop must be one of {TRAIN_CROPS}, not {train_crop!r}.")
    source = _source(name, data_dir, modality)
    short_clip = short_clip or source.short_clip
    video_ops.check_short_clip(short_clip)
    info = source.info()
    if flip and not info.flip_allowed:
        raise UserError(
            f"Dataset {name} forbids horizontal flips (left/right is part of its "
            f"classes): leave flip=None or set flip=False."
        )
    flip = info.flip_allowed if flip is None else flip
    crop_area_range = crop_area_range or source.crop_area_range
    process_index, process_count = _resolve_host(process_index, process_count)
    start, stop, _ = _host_range(source.split_size(split), process_index, process_count)
    if stop <= start:
        raise UserError(f"Split {split} of {name} has too few videos for {process_count} hosts.")

    ds = source.read(split, start, stop, shuffle_files=True, seed=seed)
    ds = ds.repeat()
    ds = ds.enumerate()  # stream position: the per-example seed

    def sample(position, raw):
        example_seed = video_ops.example_seed(seed, process_index, position)
        indices = video_ops.train_window(
            tf.shape(raw["jpegs"])[0],
            num_frames,
            stride,
            video_ops.sub_seed(example_seed, _TEMPORAL),
            short_clip,
        )
        return {
            "jpegs": video_ops.gather_frames(raw["jpegs"], indices),
            "label": raw["label"],
            "seed": example_seed,
        }

    decode = _decoder(modality, fused_decode)
    channels = CHANNELS[modality]

    def decode_and_augment(clip):
        image_hw = video_ops.frame_shape(video_ops.first_jpeg(clip["jpegs"]))
        crop_seed = video_ops.sub_seed(clip["seed"], _CROP)
        if train_crop == PAPER_CROP:
            window = video_ops.fixed_crop_window(image_hw, crop_size, crop_seed)
        else:
            window = video_ops.random_crop_window(
                image_hw, crop_seed, area_range=crop_area_range, aspect_range=crop_aspect_range
            )
        frames = decode(clip["jpegs"], window)
        mirrored = tf.logical_and(
            flip, video_ops.flip_draw(video_ops.sub_seed(clip["seed"], _FLIP))
        )
        if flip and not flip_on_device:  # on the crop, before any resize (they commute)
            mirror = video_ops.mirror_flow if modality == "flow" else video_ops.mirror
            frames = tf.cond(mirrored, lambda: mirror(frames), lambda: frames)
            mirrored = tf.constant(False)
        frames = _resize(frames, crop_size, window, modality)  # a no-op for crop_size squares
        return {
            "video": tf.ensure_shape(frames, [num_frames, crop_size, crop_size, channels]),
            "label": clip["label"],
            "flip": mirrored,
        }

    ds = ds.map(sample, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.shuffle(shuffle_buffer, seed=seed)
    ds = ds.map(decode_and_augment, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.prefetch(2)
    return ds.with_options(_options(threads))


def _source(name: str, data_dir: str | None, modality: str):
    """The dataset's source, refused in one sentence when it does not store `modality`."""
    if modality not in MODALITIES:
        raise UserError(f"modality must be one of {MODALITIES}, not {modality!r}.")
    source = sources.get(name, data_dir)
    if source.modality != modality:
        if name.startswith(sources.DMVR_PREFIX):
            hint = "append &modality=flow to the name to read the shards' flow/encoded frames"
        elif modality == "flow":
            hint = f"name its flow config (e.g. {name}_flow, or {name}/<config>_flow)"
        else:
            hint = "set modality=flow"
        raise UserError(
            f"Dataset {name} stores {source.modality} frames but modality={modality!r}: {hint}."
        )
    return source


def _decoder(modality: str, fused_decode: bool):
    """(jpegs, window) -> uint8 [T, h, w, C] frames of the crop."""
    if modality == "flow":
        return lambda jpegs, window: video_ops.decode_flow(jpegs, window, fused_decode)
    return video_ops.decode_and_crop if fused_decode else video_ops.decode_then_crop


def _resize(frames: tf.Tensor, size: int, window: tf.Tensor, modality: str) -> tf.Tensor:
    """`video_ops.resize` of the crop `window`; flow displacements grow with the frame (our
    choice: the network sees motion in pixels of the frame it is given)."""
    frames = video_ops.resize(frames, size)
    if modality != "flow":
        return frames
    scale = tf.cast(size, tf.float32) / tf.cast(window[2:], tf.float32)  # (height, width)
    return video_ops.scale_flow(frames, scale[1], scale[0])


def _reverse_time(frames: tf.Tensor, modality: str) -> tf.Tensor:
    """Frames in reverse order; flow also negated (255 - level is -f): played backwards, each
    motion reverses (to first order: the backward field is sampled at the moved pixel)."""
    frames = video_ops.reverse_time(frames)
    return 255 - frames if modality == "flow" else frames


def _options(threads: int | None = None) -> tf.data.Options:
    """Deterministic, autotuned; `threads` caps the dataset's own thread pool (None: tf.data's
    default, one thread per core), for hosts whose cores also run the model."""
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = True
    if threads:
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
    return options


class TrainIterator:
    """Infinite iterator of numpy batches with exact resume.

    `save(directory)` writes the tf.data iterator state (position, shuffle buffer, prefetched
    batches) under `directory`; `restore(directory)` on an iterator built with the same arguments
    continues with exactly the batch the saved one would have produced next.
    """

    _PREFIX = "data_iterator"

    def __init__(self, dataset: tf.data.Dataset):
        self.dataset = dataset
        self._iterator = iter(dataset)
        self._checkpoint = tf.train.Checkpoint(iterator=self._iterator)

    def __iter__(self) -> "TrainIterator":
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        # np.asarray shares the tensor's buffer; .numpy() would copy every batch (~10% of the
        # paper crop's pipeline time on one thread, data/bench.py).
        return {key: np.asarray(value) for key, value in next(self._iterator).items()}

    def save(self, path: str) -> str:
        tf.io.gfile.makedirs(path)
        return self._checkpoint.write(os.path.join(path, self._PREFIX))

    def restore(self, path: str) -> None:
        prefix = os.path.join(path, self._PREFIX)
        if not tf.io.gfile.exists(prefix + ".index"):
            raise UserFileError(
                f"No saved data iterator under {path}: pass the directory given to save()."
            )
        self._checkpoint.read(prefix).assert_consumed()


def apply_flips(batch: dict[str, np.ndarray]) -> np.ndarray:
    """The batch's videos with the clips flagged in 'flip' mirrored left-right (host, numpy);
    a flow batch (2 channels) also has x negated (255 - level)."""
    video = batch["video"]
    flip = np.asarray(batch.get("flip", np.zeros(len(video), bool)))
    mirrored = video[:, :, :, ::-1]
    if video.shape[-1] == CHANNELS["flow"]:
        mirrored = np.concatenate([255 - mirrored[..., :1], mirrored[..., 1:]], axis=-1)
    return np.where(flip[:, None, None, None, None], mirrored, video)


def train_iterator(name: str, **kwargs) -> TrainIterator:
    """`train_dataset(name, **kwargs)` as an infinite numpy iterator with save/restore."""
    return TrainIterator(train_dataset(name, **kwargs))


# ---------------------------------------------------------------------------- eval


def eval_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    split: str,
    batch_size: int,
    num_frames: int,
    stride: int = 1,
    crop_size: int,
    num_clips: int | None = 1,
    num_crops: int = 1,
    reverse_time: bool = False,
    process_index: int | None = None,
    process_count: int | None = None,
    central_fraction: float | None = None,
    short_clip: str | None = None,
    fused_decode: bool = True,
    modality: str = "rgb",
    threads: int | None = None,
) -> tf.data.Dataset:
    """Finite dataset of host-local batches {'video', 'label', 'video_index', 'mask'}.

    Each video gives `num_clips` uniformly spaced clips (0/None: one clip from the first frame,
    see video_ops.eval_windows) times `num_crops` squares of side `central_fraction` x the short
    side (None: the dataset's default, 0.875 for real videos = 224 of 256, 1.0 for
    synthetic_motion), resized to `crop_size` where they are not that size already. Videos
    shorter than a clip are filled by `short_clip` (None: the dataset's default). 'video' is
    uint8 [B, T, S, S, 3].

    Every (video, clip, crop) of the split appears exactly once across all hosts; every host
    yields the same number of batches, the last ones padded with mask=False examples
    (video_index -1) so multi-host eval steps stay in lockstep.
    """
    _check_positive(
        batch_size=batch_size, num_frames=num_frames, stride=stride, crop_size=crop_size
    )
    if num_crops not in (1, 3):
        raise UserError(f"num_crops must be 1 or 3, not {num_crops}.")
    source = _source(name, data_dir, modality)
    channels = CHANNELS[modality]
    short_clip = short_clip or source.short_clip
    video_ops.check_short_clip(short_clip)
    central_fraction = central_fraction or source.eval_central_fraction
    if not 0 < central_fraction <= 1:
        raise UserError(f"central_fraction must be in (0, 1], not {central_fraction}.")
    process_index, process_count = _resolve_host(process_index, process_count)
    start, stop, most = _host_range(source.split_size(split), process_index, process_count)
    views = max(num_clips or 1, 1) * num_crops  # examples per video
    num_batches = math.ceil(most * views / batch_size)
    num_padding = num_batches * batch_size - (stop - start) * views
    decode = _decoder(modality, fused_decode)

    def views_of_video(raw):
        clips = video_ops.eval_windows(
            tf.shape(raw["jpegs"])[0], num_frames, stride, num_clips, short_clip
        )
        windows = video_ops.eval_crop_windows(
            video_ops.frame_shape(video_ops.first_jpeg(raw["jpegs"])), central_fraction, num_crops
        )
        videos = []
        for clip in tf.unstack(clips, num=max(num_clips or 1, 1)):
            jpegs = video_ops.gather_frames(raw["jpegs"], clip)
            for window in tf.unstack(windows, num=num_crops):
                frames = _resize(decode(jpegs, window), crop_size, window, modality)
                if reverse_time:
                    frames = _reverse_time(frames, modality)
                videos.append(frames)
        return {
            "video": tf.ensure_shape(
                tf.stack(videos), [views, num_frames, crop_size, crop_size, channels]
            ),
            "label": tf.fill([views], raw["label"]),
            "video_index": tf.fill([views], raw["video_index"]),
            "mask": tf.ones([views], tf.bool),
        }

    ds = source.read(split, start, stop)
    ds = ds.map(views_of_video, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.unbatch()
    padding = tf.data.Dataset.from_tensors(
        {
            "video": tf.zeros([num_frames, crop_size, crop_size, channels], tf.uint8),
            "label": tf.zeros([], tf.int32),
            "video_index": tf.constant(-1, tf.int32),
            "mask": tf.constant(False),
        }
    ).repeat(num_padding)
    ds = ds.concatenate(padding).batch(batch_size, drop_remainder=True)
    ds = ds.prefetch(2)
    return ds.with_options(_options(threads))


def all_frames_eval_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    split: str,
    batch_size: int,
    crop_size: int,
    reverse_time: bool = False,
    process_index: int | None = None,
    process_count: int | None = None,
    central_fraction: float | None = None,
    modality: str = "rgb",
    threads: int | None = None,
) -> tf.data.Dataset:
    """The paper's test protocol: every frame of each video, one centre crop, one pass.

    Finite dataset of host-local batches {'video': [B, T, S, S, 3], 'label', 'video_index',
    'mask', 'num_frames'}: each row is one whole video (all its T frames, in order, each once),
    and a batch holds only videos of one length T. Lengths vary, and padding frames would change
    the result (zero-padded convolutions see them at the clip's end, and S3D-G's gates and the
    head average over all of time), so videos are grouped by exact length instead: one compiled
    program per distinct length (Kinetics has few: most clips are 250 or 300 frames), results
    exact. A group's last batch is padded with whole masked videos (mask False, video_index
    -1); padding along the batch axis leaves every real row exact, since evaluation-mode
    BatchNorm does not mix rows. Hosts may yield different numbers and lengths of batches:
    evaluate on each host's own devices (video_s3d.evaluate does).
    """
    _check_positive(batch_size=batch_size, crop_size=crop_size)
    source = _source(name, data_dir, modality)
    decode = _decoder(modality, fused_decode=True)
    central_fraction = central_fraction or source.eval_central_fraction
    if not 0 < central_fraction <= 1:
        raise UserError(f"central_fraction must be in (0, 1], not {central_fraction}.")
    process_index, process_count = _resolve_host(process_index, process_count)
    start, stop, _ = _host_range(source.split_size(split), process_index, process_count)

    def whole_video(raw):
        jpegs = raw["jpegs"]
        window = video_ops.eval_crop_windows(
            video_ops.frame_shape(video_ops.first_jpeg(jpegs)), central_fraction, 1
        )[0]
        frames = _resize(decode(jpegs, window), crop_size, window, modality)
        if reverse_time:
            frames = _reverse_time(frames, modality)
        # uint8, normalised on the device by the eval step (the run's own mean / std).
        return {
            "video": frames,
            "label": raw["label"],
            "video_index": raw["video_index"],
            "mask": tf.constant(True),
            "num_frames": tf.shape(jpegs)[0],
        }

    def pad_batch(batch):
        count = tf.shape(batch["label"])[0]
        missing = batch_size - count

        def pad(x, value):
            paddings = tf.concat([[[0, missing]], tf.zeros([tf.rank(x) - 1, 2], tf.int32)], axis=0)
            return tf.pad(x, paddings, constant_values=value)

        return {
            "video": pad(batch["video"], 0),
            "label": pad(batch["label"], 0),
            "video_index": pad(batch["video_index"], -1),
            "mask": pad(batch["mask"], False),
            "num_frames": pad(batch["num_frames"], 0),
        }

    ds = source.read(split, start, stop)
    ds = ds.map(whole_video, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.group_by_window(
        key_func=lambda x: tf.cast(x["num_frames"], tf.int64),
        reduce_func=lambda _, window: window.batch(batch_size),
        window_size=batch_size,
    )
    ds = ds.map(pad_batch).prefetch(2)
    return ds.with_options(_options(threads))


def eval_batches(name: str, **kwargs) -> Iterator[dict[str, np.ndarray]]:
    """`eval_dataset(name, **kwargs)` as numpy batches."""
    for batch in eval_dataset(name, **kwargs).as_numpy_iterator():
        yield batch


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise UserError(f"{key} must be a positive integer, not {value!r}.")
