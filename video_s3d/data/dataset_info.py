"""The one description of a dataset a trainer reads before any clip: classes, split sizes,
flip and time-reversal facts. Every source (TFDS builders, DMVR shards, `in_memory`) returns it.

It lives apart from `sources.py` so that `in_memory` runs (tests, compute benchmarks) need not
import TensorFlow to describe their random clips.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a trainer needs to know about a dataset before reading it."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    split_sizes: Mapping[str, int]  # split -> number of videos
    flip_allowed: bool = True  # False where left/right is part of the class
    reversal_partner: list[int] | None = None  # class -> class of its time reversal (-1: none)
    # The TFDS builder version (None for DMVR shards and in_memory): results on different
    # versions of a generated dataset are not comparable, so result.json records it.
    version: str | None = None
