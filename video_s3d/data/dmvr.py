"""DMVR's record format: one `tf.train.SequenceExample` per clip, one JPEG per frame.

Context features `clip/label/index` (int64), `clip/label/text`, `video/filename`,
`clip/start/timestamp`, `clip/end/timestamp` (microseconds); feature list `image/encoded`, or
for flow `flow/encoded`: one 3-channel JPEG a frame holding x, y and an unused channel, levels
(f + 1) * 127.5 (DMVR modalities.add_image(is_flow=True) decodes 3 channels, keeps 2).
`write_shards` exists so tests (and users converting their own data) can make such shards.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import tensorflow as tf

IMAGE_KEY = "image/encoded"
FLOW_KEY = "flow/encoded"
LABEL_KEY = "clip/label/index"


def parse(record: tf.Tensor, frames_key: str = IMAGE_KEY) -> dict[str, tf.Tensor]:
    """A serialized SequenceExample -> {'jpegs': string [N], 'label': int32}."""
    context, sequence = tf.io.parse_single_sequence_example(
        record,
        context_features={LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1)},
        sequence_features={frames_key: tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    return {"jpegs": sequence[frames_key], "label": tf.cast(context[LABEL_KEY], tf.int32)}


def parse_labels(records: tf.Tensor) -> tf.Tensor:
    """int64 [B] labels of a batch of serialized SequenceExamples (-1 where none), frames unread."""
    context, _, _ = tf.io.parse_sequence_example(
        records,
        context_features={LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1)},
        sequence_features={},
    )
    return context[LABEL_KEY]


def make_example(
    jpegs: Sequence[bytes],
    label: int,
    label_text: str = "",
    filename: str = "",
    start_us: int = 0,
    end_us: int = 0,
    frames_key: str = IMAGE_KEY,
) -> bytes:
    """One serialized DMVR SequenceExample."""
    example = tf.train.SequenceExample()
    context = example.context.feature
    context[LABEL_KEY].int64_list.value.append(label)
    context["clip/label/text"].bytes_list.value.append(label_text.encode())
    context["video/filename"].bytes_list.value.append(filename.encode())
    context["clip/start/timestamp"].int64_list.value.append(start_us)
    context["clip/end/timestamp"].int64_list.value.append(end_us)
    frames = example.feature_lists.feature_list[frames_key]
    for jpeg in jpegs:
        frames.feature.add().bytes_list.value.append(jpeg)
    return example.SerializeToString()


def write_shards(
    records: Iterable[bytes], directory: str, prefix: str, num_shards: int
) -> list[str]:
    """Writes records round-robin into `prefix-0000i-of-0000n` files; returns their paths."""
    tf.io.gfile.makedirs(directory)
    paths = [
        os.path.join(directory, f"{prefix}-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)
    ]
    writers = [tf.io.TFRecordWriter(path) for path in paths]
    try:
        for i, record in enumerate(records):
            writers[i % num_shards].write(record)
    finally:
        for writer in writers:
            writer.close()
    return paths
