"""Dataset names -> where the clips come from: a TFDS builder, or existing DMVR shards.

A source turns (split, range of videos) into a tf.data.Dataset of raw elements
`{'jpegs': string [N], 'label': int32, 'video_index': int32}`: the per-frame JPEG strings of one
video, before anything is decoded (string [N, 2] for a flow config's (x, y) grayscale pairs). `video_index` is the video's position in the whole split,
so it is unique across hosts.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import re
import urllib.parse
from typing import Mapping, Sequence

import tensorflow as tf
import tensorflow_datasets as tfds

from video_s3d.data import dmvr
from video_s3d.data.dataset_info import DatasetInfo
from video_s3d.errors import UserError, UserFileError


@dataclasses.dataclass(frozen=True)
class _TfdsEntry:
    module: str  # where the builder class lives
    builder_class: str
    config: str | None
    flip_allowed: bool = True
    generated: bool = False  # built locally from a seed (no manual download)
    partner_table: str | None = None  # attribute of the module: class-name pairs
    # Default train crop area (fraction of the frame): synthetic clips keep their object whole.
    crop_area_range: tuple[float, float] = (0.4, 1.0)
    # Default eval crop side as a fraction of the short side (0.875: 224 of 256, the paper's).
    eval_central_fraction: float = 0.875
    # How a video shorter than the window is filled (video_ops.SHORT_CLIP_MODES): repeating the
    # last frame keeps the frame rate, what the paper's 64 consecutive frames assume.
    short_clip: str = "repeat_last"


_SYNTHETIC_CROP = (0.7, 1.0)
_TFDS_DATASETS = {
    # Generated locally; `motion` classes are directions of motion, which a flip would swap.
    **{
        f"synthetic_motion/{config}": _TfdsEntry(
            "video_s3d.data.builders.synthetic_motion",
            "SyntheticMotion",
            config,
            flip_allowed=not config.startswith("motion"),
            generated=True,
            crop_area_range=_SYNTHETIC_CROP,
            eval_central_fraction=1.0,
        )
        for config in (
            "motion",
            "appearance",
            "order",
            "order_tiny",
            "flash_order",
            "flash_order_tiny",
            "far_flash_order",
            "far_flash_order_tiny",
            "motion_tiny",
            "appearance_tiny",
        )
    },
    "kinetics400": _TfdsEntry("video_s3d.data.builders.kinetics", "Kinetics400", None),
    "kinetics600": _TfdsEntry("video_s3d.data.builders.kinetics", "Kinetics600", None),
    "kinetics700": _TfdsEntry("video_s3d.data.builders.kinetics", "Kinetics700", None),
    "something_something_v1": _TfdsEntry(
        "video_s3d.data.builders.something_something_v1",
        "SomethingSomethingV1",
        None,
        flip_allowed=False,
        partner_table="REVERSAL_PAIRS",
    ),
    "something_something_v2": _TfdsEntry(
        "video_s3d.data.builders.something_something_v2",
        "SomethingSomethingV2",
        None,
        flip_allowed=False,
        partner_table="REVERSAL_PAIRS",
        # 2-6 s at 12 fps: most videos are shorter than 64 frames. Spread over the whole
        # action (TSN-style, as TSN / TRN / TSM sample this dataset), every moment keeps an
        # equal share of the time-averaged logits; repeating the last frame would let the
        # end state fill up to half the window.
        short_clip="spread",
    ),
    "hmdb51": _TfdsEntry("video_s3d.data.builders.hmdb51", "Hmdb51", None),
    "ucf101": _TfdsEntry("video_s3d.data.builders.ucf101", "Ucf101Manual", None),
    # Action detection (actor box tubes, no video label): builders/jhmdb.py, ucf101_24.py.
    "jhmdb": _TfdsEntry("video_s3d.data.builders.jhmdb", "Jhmdb", None),
    "ucf101_24": _TfdsEntry("video_s3d.data.builders.ucf101_24", "Ucf10124", None),
    # Your own videos: video_folder/<any name> (builders/video_folder.py).
    "video_folder": _TfdsEntry("video_s3d.data.builders.video_folder", "VideoFolder", None),
}
# The flow twins of the synthetic configs (builders/flow_frames.py): the same clips' TV-L1 flow.
# A real dataset's flow config is a named config, e.g. "hmdb51/split1_flow", "kinetics400/flow".
_TFDS_DATASETS.update(
    {
        f"{name}_flow": dataclasses.replace(entry, config=f"{entry.config}_flow")
        for name, entry in list(_TFDS_DATASETS.items())
        if entry.generated
    }
)
# Synonyms: TFDS's own registered names of our builders, and the config-less synthetic name.
_ALIASES = {"synthetic_motion": "synthetic_motion/motion", "ucf101_manual": "ucf101"}
DMVR_PREFIX = "dmvr:"


def known_names() -> list[str]:
    return sorted(_TFDS_DATASETS) + [f"{DMVR_PREFIX}/path/{{split}}-*-of-*?num_classes=N"]


def get(name: str, data_dir: str | None = None) -> "TfdsSource | DmvrSource":
    """The source for a dataset name; a UserError naming the choices if it is unknown."""
    if name.startswith(DMVR_PREFIX):
        return DmvrSource.from_name(name)
    base = _ALIASES.get(name, name)
    if base in _TFDS_DATASETS:
        return TfdsSource(base, _TFDS_DATASETS[base], data_dir)
    # A named config of a real dataset, e.g. "hmdb51/split2".
    dataset, _, config = base.partition("/")
    dataset = _ALIASES.get(dataset, dataset)
    entry = _TFDS_DATASETS.get(dataset)
    if entry is None or entry.generated or not config:
        raise UserError(f"Unknown dataset {name!r}: use one of {', '.join(known_names())}.")
    return TfdsSource(f"{dataset}/{config}", dataclasses.replace(entry, config=config), data_dir)


# ---------------------------------------------------------------------------- TFDS


class TfdsSource:
    """A dataset stored by one of our TFDS builders (JPEG frames, see builders/common.py)."""

    def __init__(self, name: str, entry: _TfdsEntry, data_dir: str | None):
        self.name = name
        self.entry = entry
        self.data_dir = data_dir
        builder_cls = getattr(importlib.import_module(entry.module), entry.builder_class)
        kwargs = {"config": entry.config} if entry.config else {}
        self.builder = builder_cls(data_dir=data_dir, **kwargs)

    @property
    def generated(self) -> bool:
        return self.entry.generated

    @property
    def crop_area_range(self) -> tuple[float, float]:
        return self.entry.crop_area_range

    @property
    def short_clip(self) -> str:
        return self.entry.short_clip

    @property
    def eval_central_fraction(self) -> float:
        return self.entry.eval_central_fraction

    @property
    def modality(self) -> str:
        """'flow' for a flow config (flow_x / flow_y JPEGs, builders/flow_frames.py), else 'rgb'."""
        return "flow" if getattr(self.builder.builder_config, "flow", False) else "rgb"

    def is_built(self) -> bool:
        return self.builder.is_prepared()

    def not_built_error(self) -> FileNotFoundError:
        data_dir = f" --data_dir={self.data_dir}" if self.data_dir else ""
        return UserFileError(
            f"Dataset {self.name} is not prepared in {self.builder.data_dir}: build it once with "
            f"`python -m video_s3d.data.build --dataset={self.name} --manual_dir=DIR{data_dir}`, "
            f"DIR holding {getattr(self.builder, 'MANUAL_DIR_SUMMARY', 'the source files')}."
        )

    def build(self, manual_dir: str | None = None, beam_options=None) -> None:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir, beam_options=beam_options)
        self.builder.download_and_prepare(download_config=config)

    def info(self) -> DatasetInfo:
        if self.generated and not self.is_built():
            config = self.builder.builder_config  # sizes and names are known before building
            names = _class_names(self.builder.info.features)
            sizes = dict(config.split_sizes)
        else:
            if not self.is_built():
                raise self.not_built_error()
            names = _class_names(self.builder.info.features)
            sizes = {split: info.num_examples for split, info in self.builder.info.splits.items()}
        return DatasetInfo(
            name=self.name,
            num_classes=len(names),
            class_names=names,
            split_sizes=sizes,
            flip_allowed=self.entry.flip_allowed,
            reversal_partner=self._reversal_partner(names),
            version=str(self.builder.version),
        )

    def _reversal_partner(self, names: Sequence[str]) -> list[int] | None:
        if self.name.startswith("synthetic_motion/"):
            from video_s3d.data.builders import synthetic_render

            return synthetic_render.reversal_partner(self.builder.builder_config.task)
        if self.entry.partner_table is None:
            return None
        pairs = getattr(importlib.import_module(self.entry.module), self.entry.partner_table)
        return partners_from_pairs(names, pairs)

    def split_size(self, split: str) -> int:
        sizes = self.info().split_sizes
        base, lo, hi = split_range(split)
        if base not in sizes:
            raise UserError(
                f"Dataset {self.name} has no split {base!r}: use one of {', '.join(sorted(sizes))}."
            )
        return _slice_length(lo, hi, sizes[base])

    def read(
        self, split: str, start: int, stop: int, *, shuffle_files: bool = False, seed: int = 0
    ) -> tf.data.Dataset:
        """Raw elements of videos [start, stop) of `split`, in stored order unless shuffled."""
        if "label" not in self.builder.info.features:
            raise UserError(
                f"Dataset {self.name} holds actor boxes, not one label per video: train or "
                f"evaluate it as a detection dataset (config.task = 'detection')."
            )
        if stop <= start:
            return _empty_raw()
        read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
        # A flow video's frames are (x, y) grayscale JPEG pairs: 'jpegs' is then string [N, 2].
        keys = ("flow_x", "flow_y") if self.modality == "flow" else ("video",)
        base, lo, _ = split_range(split)
        ds = self.builder.as_dataset(
            split=f"{base}[{lo + start}:{lo + stop}]",
            shuffle_files=shuffle_files,
            read_config=read_config,
            decoders={key: tfds.decode.SkipDecoding() for key in keys},
        )
        ds = ds.enumerate(start=start)

        def frames(example):
            if len(keys) == 1:
                return example[keys[0]]
            return tf.stack([example[key] for key in keys], axis=1)

        return ds.map(
            lambda index, example: {
                "jpegs": frames(example),
                "label": tf.cast(example["label"], tf.int32),
                "video_index": tf.cast(index, tf.int32),
            },
            num_parallel_calls=tf.data.AUTOTUNE,
        )


_SLICE = re.compile(r"^(?P<base>[\w-]+)\[(?P<lo>\d*):(?P<hi>\d*)\]$")


def split_range(split: str) -> tuple[str, int, int | None]:
    """(split, first video, end or None) of a split name, which may carry TFDS's slice syntax
    with video counts: 'train[:300]' is the first 300 training videos (a data-scarce run),
    'train[300:]' the rest. Percentages are not accepted: a count names the same videos
    whatever the split's size."""
    if "[" not in split:
        return split, 0, None
    match = _SLICE.match(split)
    if match is None:
        raise UserError(
            f"Split {split!r} is not a split name or a slice of one by video counts, "
            "e.g. train, train[:300] or train[300:600]."
        )
    lo = int(match["lo"] or 0)
    hi = int(match["hi"]) if match["hi"] else None
    return match["base"], lo, hi


def _slice_length(lo: int, hi: int | None, whole: int) -> int:
    """Videos in [lo, hi) of a split of `whole` videos (hi None: to the end)."""
    return max(0, min(whole if hi is None else hi, whole) - lo)


def _class_names(features) -> tuple[str, ...]:
    """The video label's class names, or the actor tubes' of a detection dataset."""
    label = features["label"] if "label" in features else features["tubes"]["label"]
    return tuple(label.names)


def partners_from_pairs(names: Sequence[str], pairs) -> list[int]:
    """class -> partner class for every named pair present in `names`; -1 where none."""
    position = {name: i for i, name in enumerate(names)}
    partner = [-1] * len(names)
    for first, second in pairs:
        if first in position and second in position:
            partner[position[first]] = position[second]
            partner[position[second]] = position[first]
    return partner


def _empty_raw() -> tf.data.Dataset:
    return tf.data.Dataset.from_tensors(
        {
            "jpegs": tf.zeros([0], tf.string),
            "label": tf.zeros([], tf.int32),
            "video_index": tf.zeros([], tf.int32),
        }
    ).take(0)


# ---------------------------------------------------------------------------- DMVR shards


class DmvrSource:
    """Existing DMVR TFRecord shards,
    `dmvr:/path/{split}-*-of-*?num_classes=N[&flip=false][&modality=flow]`.

    `modality=flow` reads the records' `flow/encoded` frames (dmvr.py) instead of their images.

    `{split}` in the pattern is replaced by the split asked for; without it the same files serve
    every split. Each record (one `tf.train.SequenceExample`) counts as one video.
    """

    generated = False
    crop_area_range = (0.4, 1.0)
    eval_central_fraction = 0.875
    short_clip = "repeat_last"

    def __init__(
        self,
        name: str,
        pattern: str,
        num_classes: int,
        flip_allowed: bool,
        modality: str = "rgb",
    ):
        self.name = name
        self.pattern = pattern
        self.num_classes = num_classes
        self.flip_allowed = flip_allowed
        self.modality = modality
        self._sizes: dict[str, int] = {}

    @classmethod
    def from_name(cls, name: str) -> "DmvrSource":
        path, _, query = name[len(DMVR_PREFIX) :].partition("?")
        params = urllib.parse.parse_qs(query)
        if "num_classes" not in params:
            raise UserError(
                f"DMVR dataset {name!r} needs its class count: append '?num_classes=N' to the name."
            )
        flip = params.get("flip", ["true"])[0].lower() not in ("false", "0", "no")
        modality = params.get("modality", ["rgb"])[0].lower()
        if modality not in ("rgb", "flow"):
            raise UserError(f"DMVR dataset {name!r}: modality={modality!r}, use rgb or flow.")
        return cls(name, path, int(params["num_classes"][0]), flip, modality)

    def files(self, split: str) -> list[str]:
        pattern = self.pattern.replace("{split}", split)
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise UserFileError(
                f"No DMVR shards match {pattern}: check the path and the split name ({split!r})."
            )
        return files

    def is_built(self) -> bool:
        return True

    def not_built_error(self) -> FileNotFoundError:
        return UserFileError(f"No DMVR shards match {self.pattern}.")

    def split_size(self, split: str) -> int:
        """Records in the split's shards, every label checked on the way (read once, cached)."""
        base, lo, hi = split_range(split)
        if base not in self._sizes:
            files = self.files(base)
            logging.info("Counting records in %d DMVR shards of %s...", len(files), base)
            self._sizes[base] = sum(self._count_and_check(path) for path in files)
        return _slice_length(lo, hi, self._sizes[base])

    def _count_and_check(self, path: str, batch: int = 4096) -> int:
        """Records in one shard; a UserError naming the record whose label is not a class.

        Such a label would train against an all-zero target and crash the evaluation, so it is
        refused before training: the shards are read here anyway to count them. A record that
        does not parse, or a truncated shard, is named the same way (found by rereading that
        shard one record at a time).
        """
        labels = tf.data.TFRecordDataset(path).batch(batch).map(dmvr.parse_labels)
        count = 0
        try:
            for chunk in labels.as_numpy_iterator():
                bad = ((chunk < 0) | (chunk >= self.num_classes)).nonzero()[0]
                if len(bad):
                    index, label = count + int(bad[0]), int(chunk[bad[0]])
                    what = (
                        f"has no {dmvr.LABEL_KEY}"
                        if label == -1
                        else f"has label {label}, outside 0..{self.num_classes - 1}"
                    )
                    raise UserError(
                        f"DMVR record {index} of {path} {what}; fix the shards or set "
                        f"num_classes in the dataset name ({self.name})."
                    )
                count += len(chunk)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
            if batch > 1:
                return self._count_and_check(path, batch=1)
            if isinstance(error, tf.errors.InvalidArgumentError):
                raise UserError(
                    f"DMVR record {count} of {path} is not a tf.train.SequenceExample; "
                    f"rewrite or remove that shard."
                ) from None
            raise UserError(
                f"DMVR shard {path} is truncated or corrupt at or after record {count}; "
                f"rewrite or remove that shard."
            ) from None
        return count

    def info(self) -> DatasetInfo:
        names = tuple(str(i) for i in range(self.num_classes))
        return DatasetInfo(
            name=self.name,
            num_classes=self.num_classes,
            class_names=names,
            split_sizes=_LazySizes(self),
            flip_allowed=self.flip_allowed,
            reversal_partner=None,
        )

    def read(
        self, split: str, start: int, stop: int, *, shuffle_files: bool = False, seed: int = 0
    ) -> tf.data.Dataset:
        base, lo, _ = split_range(split)
        files = self.files(base)
        if stop <= start:
            return _empty_raw()
        # Records are read in file order (shuffle_files and seed are ignored: the position in
        # that order, counted from the slice's start, is the video index, and the train
        # shuffle buffer does the mixing).
        del shuffle_files, seed
        ds = tf.data.TFRecordDataset(files)
        ds = ds.enumerate().skip(lo + start).take(stop - start)
        return ds.map(
            lambda index, record: {
                **dmvr.parse(record, dmvr.FLOW_KEY if self.modality == "flow" else dmvr.IMAGE_KEY),
                "video_index": tf.cast(index - lo, tf.int32),
            },
            num_parallel_calls=tf.data.AUTOTUNE,
        )


class _LazySizes(Mapping):
    """Split sizes of DMVR shards, counted (by reading every record) only when asked for.

    Index it by split name; it does not list its splits (iterating it yields nothing).
    """

    def __init__(self, source: DmvrSource):
        self._source = source

    def __getitem__(self, split):
        # A missing split raises the source's FileNotFoundError, which says what to check.
        return self._source.split_size(split)

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0
