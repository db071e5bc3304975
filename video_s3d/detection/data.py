"""Detection datasets: TFDS builders whose examples carry actor tubes, read as key-frame clips.

A detection builder (`synthetic_detection`, `jhmdb`, `ucf101_24`) stores per example `video`
(JPEG frames), `video_id` and `tubes` (`label`, `tube_id`, `boxes` [T, 4] as (ymin, xmin, ymax,
xmax) fractions of the frame, `visible` [T]). The dataset name is `<module>[/<config>]` of
`video_s3d/data/builders/<module>.py`, e.g. `synthetic_detection/detection_tiny` or
`jhmdb/split1`.

Training: this host's videos, repeated and shuffled; per example a key frame drawn among the
annotated ones, the clip of `num_frames` at `stride` centred on it (the video's ends repeated),
every frame resized to `crop_size` square (boxes are fractions, so they stay put; the aspect
ratio is not kept: our choice), optionally mirrored with its boxes, and the key frame's boxes
padded to `max_actors`. Randomness is stateless, seeded from (seed, host, stream position), so
`pipeline.TrainIterator`'s save/restore resumes exactly. Evaluation reads whole videos.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from typing import Iterator

import tensorflow as tf
import tensorflow_datasets as tfds

from video_s3d.data import pipeline, video_ops
from video_s3d.detection.training import LabelledVideo
from video_s3d.errors import UserError, UserFileError

# Built locally from a seed on first use; the others need their manual downloads.
GENERATED = ("synthetic_detection",)
KNOWN = "synthetic_detection/<detection|detection_tiny>, jhmdb/split<1|2|3> or ucf101_24"
_KEY, _FLIP = 0, 1  # purposes folded into an example's seed


@dataclasses.dataclass(frozen=True)
class DetectionInfo:
    name: str
    num_classes: int
    class_names: tuple[str, ...]
    split_sizes: dict[str, int]
    version: str | None


def builder(name: str, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
    """The TFDS builder of a detection dataset name; one sentence if there is none."""
    dataset, _, config = name.partition("/")
    try:
        module = importlib.import_module(f"video_s3d.data.builders.{dataset}")
    except ModuleNotFoundError:
        raise UserError(f"config.data.name={name!r} is no detection dataset; use {KNOWN}.")
    # The builder class defined there (by its registered name where the module has several).
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, tfds.core.DatasetBuilder)
        and value.__module__ == module.__name__
        and hasattr(value, "VERSION")
    ]
    if len(classes) > 1:
        classes = [value for value in classes if value.name == dataset]
    if len(classes) != 1:
        raise UserError(f"config.data.name={name!r} is no detection dataset; use {KNOWN}.")
    try:
        return classes[0](data_dir=data_dir, **({"config": config} if config else {}))
    except ValueError as error:
        raise UserError(f"config.data.name={name!r}: {error}; use {KNOWN}.") from None


def ensure_ready(data) -> None:
    """Builds a generated set if absent; one sentence saying how to build a real one."""
    source = builder(data.name, data.get("data_dir"))
    if source.is_prepared():
        return
    dataset, _, config = data.name.partition("/")
    if dataset not in GENERATED:
        flags = (f" --config={config}" if config else "") + (
            f" --data_dir={data.data_dir}" if data.get("data_dir") else ""
        )
        raise UserFileError(
            f"Dataset {data.name} is not prepared in {source.data_dir}: build it once with "
            f"`tfds build {dataset} --imports=video_s3d.data.builders.{dataset}{flags} "
            f"--manual_dir=DIR`, DIR holding "
            f"{getattr(source, 'MANUAL_DIR_SUMMARY', 'its downloaded files')}."
        )
    logging.warning("Generating %s into %s...", data.name, source.data_dir)
    source.download_and_prepare()


def dataset_info(data) -> DetectionInfo:
    source = builder(data.name, data.get("data_dir"))
    names = tuple(source.info.features["tubes"]["label"].names)
    sizes = {split: info.num_examples for split, info in source.info.splits.items()}
    for split in (data.train_split, data.eval_split):
        if split not in sizes:
            raise UserError(
                f"Dataset {data.name} has no split {split!r}; use one of {', '.join(sorted(sizes))}."
            )
    return DetectionInfo(data.name, len(names), names, sizes, str(source.version))


def _read(source, split: str, start: int, stop: int) -> tf.data.Dataset:
    dataset = source.as_dataset(
        split=f"{split}[{start}:{stop}]",
        decoders={"video": tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(try_autocache=False),
    )
    return dataset.map(
        lambda example: {
            "jpegs": example["video"],
            "video_id": example["video_id"],
            "labels": tf.cast(example["tubes"]["label"], tf.int32),
            "boxes": example["tubes"]["boxes"],
            "visible": example["tubes"]["visible"],
        }
    )


def _decode(jpegs: tf.Tensor, size: int) -> tf.Tensor:
    frames = tf.map_fn(
        lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3),
        jpegs,
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )
    return video_ops.resize(frames, size)


def _training_example(seed, example, *, num_frames, stride, crop_size, max_actors, flip):
    """One clip around a random annotated key frame, and that frame's padded ground truth."""
    length = tf.shape(example["jpegs"])[0]
    annotated = tf.reduce_any(example["visible"], axis=0)
    candidates = tf.cond(
        tf.reduce_any(annotated),
        lambda: tf.cast(tf.where(annotated)[:, 0], tf.int32),
        lambda: tf.range(length),
    )
    pick = tf.random.stateless_uniform(
        [], video_ops.sub_seed(seed, _KEY), 0, tf.size(candidates), tf.int32
    )
    key = candidates[pick]
    offsets = (tf.range(num_frames) - num_frames // 2) * stride
    video = _decode(
        tf.gather(example["jpegs"], tf.clip_by_value(key + offsets, 0, length - 1)), crop_size
    )
    present = example["visible"][:, key]
    boxes = tf.boolean_mask(example["boxes"][:, key], present)[:max_actors]
    labels = tf.boolean_mask(example["labels"], present)[:max_actors]
    pad = max_actors - tf.shape(labels)[0]
    if flip:
        mirrored = video_ops.flip_draw(video_ops.sub_seed(seed, _FLIP))
        video = tf.cond(mirrored, lambda: video[:, :, ::-1], lambda: video)
        flipped = tf.stack([boxes[:, 0], 1 - boxes[:, 3], boxes[:, 2], 1 - boxes[:, 1]], axis=1)
        boxes = tf.where(mirrored, flipped, boxes)
    return {
        "video": tf.ensure_shape(video, [num_frames, crop_size, crop_size, 3]),
        "gt_boxes": tf.ensure_shape(tf.pad(boxes, [[0, pad], [0, 0]]), [max_actors, 4]),
        "gt_labels": tf.ensure_shape(tf.pad(labels, [[0, pad]]), [max_actors]),
        "gt_valid": tf.ensure_shape(tf.range(max_actors) < max_actors - pad, [max_actors]),
    }


def train_iterator(
    data, *, local_batch: int, seed: int, process_index: int, process_count: int
) -> pipeline.TrainIterator:
    """Endless host-local batches {'video' uint8 [B, T, S, S, 3], 'gt_boxes' [B, G, 4],
    'gt_labels' [B, G], 'gt_valid' [B, G]} with exact save/restore."""
    source = builder(data.name, data.get("data_dir"))
    size = source.info.splits[data.train_split].num_examples
    start, stop = size * process_index // process_count, size * (process_index + 1) // process_count
    if stop <= start:
        raise UserError(
            f"{data.name}:{data.train_split} has {size} videos, too few for {process_count} "
            f"processes; train on fewer processes."
        )
    make = dict(
        num_frames=int(data.num_frames),
        stride=int(data.stride),
        crop_size=int(data.crop_size),
        max_actors=int(data.max_actors),
        flip=bool(data.flip),
    )
    dataset = (
        _read(source, data.train_split, start, stop)
        .repeat()
        .shuffle(min(stop - start, 256), seed=seed + 7919 * process_index)
        .enumerate()
        .map(
            lambda position, example: _training_example(
                video_ops.example_seed(seed, process_index, position), example, **make
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        .batch(local_batch, drop_remainder=True)
        .prefetch(2)
    )
    return pipeline.TrainIterator(dataset)


def eval_videos(data, max_videos: int | None = None) -> Iterator[LabelledVideo]:
    """The eval split's videos one at a time, every frame resized to `crop_size` square."""
    source = builder(data.name, data.get("data_dir"))
    size = source.info.splits[data.eval_split].num_examples
    stop = size if not max_videos else min(size, int(max_videos))
    size_px = int(data.crop_size)
    dataset = _read(source, data.eval_split, 0, stop).map(
        lambda example: {
            **{k: v for k, v in example.items() if k != "jpegs"},
            "frames": _decode(example["jpegs"], size_px),
        }
    )
    for example in tfds.as_numpy(dataset.prefetch(2)):
        yield LabelledVideo(
            example["video_id"].decode(),
            example["frames"],
            example["labels"],
            example["boxes"],
            example["visible"].astype(bool),
        )


def num_eval_videos(data, info: DetectionInfo) -> int:
    size = info.split_sizes[data.eval_split]
    return min(size, int(data.max_eval_videos)) if data.get("max_eval_videos") else size
