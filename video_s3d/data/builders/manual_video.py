"""The base of every builder that reads video files the user downloaded (the manual dir).

A subclass only says where its annotation files are and how to read them (`list_videos`);
this base decodes each video with PyAV (resampled to the config's fps, short side resized),
stores it as per-frame JPEGs, skips unreadable or missing videos and reports them. A flow
config (`flow=True`, named `<config>_flow` by the subclasses) stores instead the TV-L1 flow of
the same decoded frames (flow_frames.py), logging videos, frame pairs per second and an ETA.

Build (plain, one machine):
    python -m video_s3d.data.build --dataset=hmdb51 --manual_dir=/data/hmdb51
Build with Apache Beam (scales out; same command with a runner, e.g. on Dataflow):
    tfds build hmdb51 --imports=video_s3d.data.builders --manual_dir=/data/hmdb51 \
        --beam_pipeline_options="runner=DirectRunner,direct_num_workers=8,direct_running_mode=multi_processing"
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import os
import re
from typing import Iterable, Sequence

import tensorflow_datasets as tfds

from video_s3d.data.builders import common, flow_frames, video_files
from video_s3d.errors import UserFileError

VIDEO_EXTENSIONS = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".flv", ".3gp")


@dataclasses.dataclass(frozen=True)
class VideoItem:
    """One video to store: where it is (None when missing) and its class."""

    video_id: str
    path: str | None
    label: int


class VideoConfig(tfds.core.BuilderConfig):
    """How videos are stored: frame rate (None keeps the source's), short side, split fold."""

    def __init__(
        self,
        *,
        fps: float | None = None,
        short_side: int | None = 256,
        fold: int = 1,
        max_seconds: float | None = None,
        flow: bool = False,
        **kwargs,
    ):
        kwargs.setdefault(
            "description",
            f"fps {fps or 'as recorded'}, short side {short_side}, split {fold}"
            + (", TV-L1 flow" if flow else ""),
        )
        super().__init__(**kwargs)
        self.fps = fps
        self.short_side = short_side
        self.fold = fold
        self.max_seconds = max_seconds
        self.flow = flow  # store the TV-L1 flow of the decoded frames (flow_frames) instead


def with_flow_twins(configs: Sequence[VideoConfig]) -> list[VideoConfig]:
    """Each config, then its flow twin: the same videos and frames, named `<name>_flow`
    (`default` -> `flow`)."""
    twins = []
    for config in configs:
        name = "flow" if config.name == "default" else f"{config.name}_flow"
        twin = VideoConfig(
            name=name,
            fps=config.fps,
            short_side=config.short_side,
            fold=config.fold,
            max_seconds=config.max_seconds,
            flow=True,
        )
        twins.append(twin)
    return [*configs, *twins]


class ManualVideoBuilder(
    common.BeamAwareMixin, tfds.core.GeneratorBasedBuilder, skip_registration=True
):
    """Videos + annotation files in a manual dir -> JPEG frames in TFDS records."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put the videos and annotation files in the manual dir."
    MANUAL_DIR_SUMMARY = "the videos and their annotation files"  # one line, for error messages

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: list[tuple[str, str, str]] = []  # (split, video_id, reason) of the last build

    # ---------------------------------------------------------------- for subclasses

    def list_videos(self, manual_dir: str) -> tuple[list[str], dict[str, list[VideoItem]]]:
        """Class names and, per split, the videos; FileNotFoundError naming any missing file."""
        raise NotImplementedError

    # ---------------------------------------------------------------- TFDS

    def _info(self) -> tfds.core.DatasetInfo:
        # Class names come from the annotation files, set in _split_generators.
        if getattr(self.builder_config, "flow", False):
            return self.dataset_info_from_configs(
                features=flow_frames.features(None), description=self.__doc__
            )
        return self.dataset_info_from_configs(
            features=common.video_features(None),
            supervised_keys=("video", "label"),
            description=self.__doc__,
        )

    def _split_generators(self, dl_manager):
        manual_dir = self._checked_manual_dir(dl_manager)
        names, splits = self.list_videos(manual_dir)
        self.info.features["label"].names = list(names)
        self.skipped = []
        check_found(self.name, manual_dir, splits, "put the video files there (any sub-folders)")
        return {
            split: self._generate_examples(split, items, names) for split, items in splits.items()
        }

    def _generate_examples(self, split: str, items: Sequence[VideoItem], names: Sequence[str]):
        config = self.builder_config
        make = functools.partial(
            make_video_examples,
            names=tuple(names),
            fps=config.fps,
            short_side=config.short_side,
            max_seconds=config.max_seconds,
        )
        if config.flow:
            make = functools.partial(make, flow=True)
        if self._use_beam:
            return common.generate(items, functools.partial(_skip_in_beam, make), True, label=split)
        return self._generate_locally(split, items, make)

    def _generate_locally(self, split, items, make):
        flow = getattr(self.builder_config, "flow", False)
        progress = flow_frames.Progress(f"{self.name} {split}", len(items)) if flow else None
        for item in items:
            try:
                for key, example in make(item):
                    if progress:
                        progress.update(len(example["flow_x"]))
                    yield key, example
            except video_files.UnreadableVideo as error:
                self.skipped.append((split, item.video_id, str(error)))
                logging.warning(
                    "Skipping %s video %s (%s): %s",
                    split,
                    item.video_id,
                    item.path or "not found",
                    error,
                )
        logging.warning(skipped_summary(self.skipped, split, len(items)))

    def _checked_manual_dir(self, dl_manager) -> str:
        manual_dir = os.fspath(dl_manager._manual_dir) if dl_manager._manual_dir else None  # pylint: disable=protected-access
        if not manual_dir or not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
            raise UserFileError(
                f"{self.name} needs its files in a manual dir ({manual_dir or 'none given'} is "
                f"missing or empty): pass --manual_dir=DIR with DIR holding "
                f"{self.MANUAL_DIR_SUMMARY}.\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        return manual_dir


def check_found(name: str, manual_dir: str, splits: dict, what_to_do: str) -> None:
    """Logs each split's listed and missing videos (items with `path` None); a UserFileError
    when none of a split's videos is in the manual dir, saying `what_to_do`."""
    for split, items in splits.items():
        missing = sum(item.path is None for item in items)
        if missing == len(items):
            raise UserFileError(
                f"None of the {len(items)} {split} videos of {name} were found under "
                f"{manual_dir}: {what_to_do}."
            )
        logging.info("%s %s: %d videos listed, %d missing.", name, split, len(items), missing)


def find_split_files(manual_dir: str, pattern: re.Pattern, fold: int) -> dict[str, str]:
    """{class label: path} of the split files anywhere under `manual_dir` whose name matches
    `pattern` (groups `label` and `fold`) for `fold` (the HMDB51 / JHMDB split-file layout)."""
    split_files = {}
    for directory, _, files in os.walk(manual_dir):
        for name in files:
            match = pattern.match(name)
            if match and int(match["fold"]) == fold:
                split_files[match["label"]] = os.path.join(directory, name)
    return split_files


def make_video_examples(
    item: VideoItem, *, names: Sequence[str], fps, short_side, max_seconds, flow: bool = False
) -> Iterable[tuple[str, dict]]:
    """Decodes one video into one example (its flow with `flow`); UnreadableVideo when it
    cannot."""
    if item.path is None:
        raise video_files.UnreadableVideo("file not found in the manual dir")
    frames, frame_rate = video_files.read_video(
        item.path, fps=fps, short_side=short_side, max_seconds=max_seconds
    )
    yield common.classification_example(
        item.video_id, flow_frames.frame_fields(frames, flow=flow), item.label, names, frame_rate
    )


def _skip_in_beam(make, item: VideoItem):
    """Beam workers skip unreadable videos too, counting them and naming them in the logs."""
    beam = tfds.core.lazy_imports.apache_beam
    try:
        return list(make(item))
    except video_files.UnreadableVideo as error:
        beam.metrics.Metrics.counter("video_s3d", "skipped_videos").inc()
        logging.warning(
            "Skipping video %s (%s): %s", item.video_id, item.path or "not found", error
        )
        return []


def skipped_summary(
    skipped: Sequence[tuple[str, str, str]], split: str | None = None, total: int | None = None
) -> str:
    """One line per skipped video, headed by a count."""
    rows = [row for row in skipped if split is None or row[0] == split]
    where = f"{split}: " if split else ""
    out_of = f" of {total}" if total is not None else ""
    lines = [f"{where}{len(rows)}{out_of} videos skipped"]
    reasons = collections.Counter(reason.split(" (")[0] for _, _, reason in rows)
    if rows:
        lines[0] += " (" + ", ".join(f"{n} {r}" for r, n in reasons.most_common()) + "):"
    lines += [f"  {s}/{video_id}: {reason}" for s, video_id, reason in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- helpers for list_videos


def index_videos(root: str) -> dict[str, str]:
    """Every video file under `root` by name without extension (and by name with it)."""
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            stem, extension = os.path.splitext(name)
            if extension.lower() in VIDEO_EXTENSIONS:
                path = os.path.join(directory, name)
                found.setdefault(stem, path)
                found.setdefault(name, path)
    return found


def find_file(root: str, candidates: Sequence[str], what: str, required: bool = True) -> str | None:
    """The first of `candidates` (paths relative to root, or bare names found anywhere below it)."""
    for candidate in candidates:
        if os.path.isfile(os.path.join(root, candidate)):
            return os.path.join(root, candidate)
    bare = {os.path.basename(c) for c in candidates}
    for directory, _, files in os.walk(root):
        for name in sorted(files):
            if name in bare:
                return os.path.join(directory, name)
    if required:
        raise UserFileError(
            f"Missing {what} in the manual dir {root}: expected one of {', '.join(candidates)}."
        )
    return None
