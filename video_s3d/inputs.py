"""Input sources for training and evaluation, chosen by `config.data.name`.

A real dataset name goes to `video_s3d.data.pipeline` (tf.data). The name `in_memory`
gives random clips generated once on the host and cycled: no decoding cost at all, so a
step fed from it measures compute alone (the benchmark's compute-bound column) and the
tests can exercise the training loop without building a dataset.

Both sources hand out host-local numpy batches `{'video': u8 [B,T,S,S,3], 'label': i32 [B]}`
([B,T,S,S,2] flow levels when `config.data.modality` is "flow")
(the pipeline adds 'flip': bool [B]; the jitted programs mirror flagged clips and normalise on
the device, `video_s3d.normalization`) and iterators
with `save(path)` / `restore(path)` for exact resume.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator

import ml_collections
import numpy as np

from video_s3d.data.dataset_info import DatasetInfo

IN_MEMORY = "in_memory"


def modality(data: ml_collections.ConfigDict) -> str:
    """'rgb' (the default) or 'flow': what the run's dataset stores and its model sees."""
    return data.get("modality", None) or "rgb"


def channels(data: ml_collections.ConfigDict) -> int:
    return 2 if modality(data) == "flow" else 3


def dataset_info(data: ml_collections.ConfigDict) -> DatasetInfo:
    if data.name == IN_MEMORY:
        n = int(data.num_classes)
        return DatasetInfo(
            name=IN_MEMORY,
            num_classes=n,
            class_names=tuple(f"class_{i}" for i in range(n)),
            split_sizes={data.train_split: 0, data.eval_split: int(data.num_eval_videos)},
        )
    from video_s3d.data import pipeline

    return pipeline.dataset_info(data.name, data_dir=data.data_dir)


def input_threads() -> int | None:
    """tf.data's thread pool when the model trains on this host's CPU cores too, else None
    (tf.data's default: a thread per core).

    Decoding threads that preempt XLA's stall its parallel ops: on the 2-core study machine
    (tiny I3D, 13 x 48^2 clips, batch 16) one tf.data thread gave 74 clips/s against 71 with
    the default pool, measured alternately, 2 runs each (README, Benchmarks). A quarter of
    the cores is not measured; our choice for larger CPU hosts."""
    import jax

    if jax.default_backend() != "cpu":
        return None
    return max(1, len(os.sched_getaffinity(0)) // 4)  # the cores this process may use


def ensure_ready(data: ml_collections.ConfigDict) -> None:
    """Builds the synthetic dataset if absent; one-sentence error for an unprepared real one."""
    if data.name == IN_MEMORY:
        return
    from video_s3d.data import pipeline

    pipeline.ensure_built(data.name, data_dir=data.data_dir)


def train_iterator(
    data: ml_collections.ConfigDict,
    *,
    local_batch: int,
    seed: int,
    process_index: int,
    process_count: int,
):
    if data.name == IN_MEMORY:
        return InMemoryIterator(
            local_batch=local_batch,
            num_frames=data.num_frames,
            crop_size=data.crop_size,
            num_classes=data.num_classes,
            seed=seed,
            process_index=process_index,
            channels=channels(data),
        )
    from video_s3d.data import pipeline

    return pipeline.train_iterator(
        data.name,
        data_dir=data.data_dir,
        split=data.train_split,
        batch_size=local_batch,
        num_frames=data.num_frames,
        stride=data.stride,
        crop_size=data.crop_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
        flip=data.flip,
        train_crop=data.get("train_crop", None) or pipeline.RANDOM_RESIZED_CROP,
        short_clip=data.get("short_clip", None),
        modality=modality(data),
        threads=input_threads(),
    )


def eval_batches(
    data: ml_collections.ConfigDict,
    *,
    local_batch: int,
    reverse_time: bool,
    process_index: int,
    process_count: int,
    split: str | None = None,
) -> Iterator[dict]:
    split = split or data.eval_split
    if data.name == IN_MEMORY:
        return in_memory_eval_batches(
            local_batch=local_batch,
            num_frames=data.num_frames,
            crop_size=data.crop_size,
            num_classes=data.num_classes,
            num_videos=data.num_eval_videos,
            views=data.eval_num_clips * data.eval_num_crops,
            reverse_time=reverse_time,
            process_index=process_index,
            process_count=process_count,
            channels=channels(data),
        )
    from video_s3d.data import pipeline

    return pipeline.eval_batches(
        data.name,
        data_dir=data.data_dir,
        split=split,
        batch_size=local_batch,
        num_frames=data.num_frames,
        stride=data.stride,
        crop_size=data.crop_size,
        num_clips=data.eval_num_clips,
        num_crops=data.eval_num_crops,
        reverse_time=reverse_time,
        process_index=process_index,
        process_count=process_count,
        short_clip=data.get("short_clip", None),
        modality=modality(data),
        threads=input_threads(),
    )


def all_frames_eval_batches(
    data: ml_collections.ConfigDict,
    *,
    local_batch: int,
    reverse_time: bool,
    process_index: int,
    process_count: int,
    split: str | None = None,
) -> Iterator[dict]:
    """Whole videos (every frame once, centre crop), batched by length; see
    `pipeline.all_frames_eval_dataset`. `in_memory`: videos of data.num_frames frames."""
    split = split or data.eval_split
    if data.name == IN_MEMORY:
        batches = in_memory_eval_batches(
            local_batch=local_batch,
            num_frames=data.num_frames,
            crop_size=data.crop_size,
            num_classes=data.num_classes,
            num_videos=data.num_eval_videos,
            views=1,
            reverse_time=reverse_time,
            process_index=process_index,
            process_count=process_count,
            channels=channels(data),
        )
        return (
            {**b, "num_frames": np.full(local_batch, data.num_frames, np.int32)} for b in batches
        )
    from video_s3d.data import pipeline

    return pipeline.all_frames_eval_dataset(
        data.name,
        data_dir=data.data_dir,
        split=split,
        batch_size=local_batch,
        crop_size=data.crop_size,
        reverse_time=reverse_time,
        process_index=process_index,
        process_count=process_count,
        modality=modality(data),
        threads=input_threads(),
    ).as_numpy_iterator()


class InMemoryIterator:
    """Cycles through a few random host-local batches made once from the seed."""

    POOL_SIZE = 4

    def __init__(
        self,
        *,
        local_batch: int,
        num_frames: int,
        crop_size: int,
        num_classes: int,
        seed: int,
        process_index: int = 0,
        channels: int = 3,
    ):
        rng = np.random.default_rng([seed, process_index])
        shape = (local_batch, num_frames, crop_size, crop_size, channels)
        self._pool = [
            {
                "video": rng.integers(0, 256, shape, dtype=np.uint8),
                "label": rng.integers(0, num_classes, local_batch).astype(np.int32),
            }
            for _ in range(self.POOL_SIZE)
        ]
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = self._pool[self.position % self.POOL_SIZE]
        self.position += 1
        return batch

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"position": self.position}, f)

    def restore(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            self.position = int(json.load(f)["position"])


def in_memory_eval_batches(
    *,
    local_batch: int,
    num_frames: int,
    crop_size: int,
    num_classes: int,
    num_videos: int,
    views: int,
    reverse_time: bool,
    process_index: int,
    process_count: int,
    channels: int = 3,
) -> Iterator[dict]:
    """Every view of every video once, padded so each process yields the same batch count."""
    rng = np.random.default_rng(1234)
    labels = rng.integers(0, num_classes, num_videos).astype(np.int32)
    videos = np.repeat(np.arange(num_videos, dtype=np.int32), views)
    mine = videos[process_index::process_count]
    per_process = -(-len(videos) // process_count)
    num_batches = -(-per_process // local_batch)
    shape = (local_batch, num_frames, crop_size, crop_size, channels)
    for b in range(num_batches):
        index = np.zeros(local_batch, np.int32)
        chunk = mine[b * local_batch : (b + 1) * local_batch]
        index[: len(chunk)] = chunk
        mask = np.arange(local_batch) < len(chunk)
        video = np.random.default_rng([process_index, b]).integers(0, 256, shape, dtype=np.uint8)
        if reverse_time:
            video = video[:, ::-1]
        yield {
            "video": np.ascontiguousarray(video),
            "label": labels[index],
            "video_index": index,
            "mask": mask,
        }
