"""Your own labelled videos: a folder per class, or a CSV of path,label[,split].

    python -m video_s3d.data.build --dataset=video_folder/my_videos --manual_dir=/data/my_videos
    python -m video_s3d.main --config=experiments/synthetic_motion.py:model=tiny_s3dg \
        --config.data.name=video_folder/my_videos --workdir=runs/my_videos

`video_folder/<name>` stores the videos found in the manual dir under that name (any name;
one per collection of videos). The manual dir holds either
  <class>/<video>                      every video of a class in its folder (any depth below),
  <split>/<class>/<video>              the same with split folders (train, validation, test), or
  <any>.csv                            one CSV at its top with rows `path,label[,split]` (a
                                       header row naming them is optional; paths relative to
                                       the CSV's folder or absolute; split train, validation
                                       or test).
Without splits, each class's videos (sorted by path) are divided: the last 20% (at least one
of a class with two or more videos) are `validation`, the rest `train` (our choice).
Classes are the folder names / labels, sorted. Videos are decoded with PyAV like the other
manual datasets (25 fps, short side 256, as Kinetics is stored); an unreadable one is skipped
and named in the build summary. A name ending in `_flow` (`video_folder/my_videos_flow`) stores
the videos' TV-L1 flow instead (flow_frames.py).
"""

from __future__ import annotations

import csv
import math
import os

from video_s3d.data.builders import manual_video
from video_s3d.data.builders.manual_video import VideoConfig, VideoItem
from video_s3d.errors import UserError, UserFileError

SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"val": "validation", "valid": "validation", "eval": "validation"}
VALIDATION_FRACTION = 0.2
FPS, SHORT_SIDE = 25.0, 256
LAYOUTS = __doc__.split("\n\n")[2]  # the manual-dir layouts, for the not-built message


def _config(name: str) -> VideoConfig:
    flow = name.endswith("_flow")
    return VideoConfig(
        name=name,
        fps=FPS,
        short_side=SHORT_SIDE,
        flow=flow,
        description=f"videos from a folder or CSV, stored as {name!r}"
        + (" (TV-L1 flow)" if flow else ""),
    )


def _split_name(text: str) -> str | None:
    text = text.strip().lower()
    text = _SPLIT_ALIASES.get(text, text)
    return text if text in SPLITS else None


class VideoFolder(manual_video.ManualVideoBuilder):
    """Labelled videos from a folder per class or a CSV, resampled to 25 fps, short side 256."""

    MANUAL_DIR_SUMMARY = (
        "a folder per class of videos (optionally inside train/ validation/ "
        "test/ folders), or a CSV of path,label[,split]"
    )
    MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUTS

    def _create_builder_config(self, builder_config, version):
        # Any name is a config: one per collection of videos (stored under video_folder/<name>).
        if builder_config is None:
            builder_config = "default"
        if isinstance(builder_config, str):
            builder_config = _config(builder_config)
        return super()._create_builder_config(builder_config, version)

    def list_videos(self, manual_dir):
        csvs = sorted(n for n in os.listdir(manual_dir) if n.lower().endswith(".csv"))
        if len(csvs) > 1:
            raise UserError(
                f"{manual_dir} holds {len(csvs)} CSV files ({', '.join(csvs)}); keep "
                f"one, or none to read the folder per class layout."
            )
        if csvs:
            rows = read_csv(os.path.join(manual_dir, csvs[0]))
        else:
            rows = scan_folders(manual_dir)
        return assign(rows)


def read_csv(path: str) -> list[tuple[str, str, str | None]]:
    """(video path, label, split or None) per row of `path,label[,split]`."""
    root = os.path.dirname(os.path.abspath(path))
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            cells = [cell.strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if number == 1 and [c.lower() for c in cells[:2]] == ["path", "label"]:
                continue  # header
            if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
                raise UserError(
                    f"{path} line {number} has {len(cells)} fields ({','.join(cells)}); "
                    f"each row must be path,label or path,label,split."
                )
            split = None
            if len(cells) == 3 and cells[2]:
                split = _split_name(cells[2])
                if split is None:
                    raise UserError(
                        f"{path} line {number}: split {cells[2]!r} is not one of "
                        f"{', '.join(SPLITS)}."
                    )
            video = cells[0] if os.path.isabs(cells[0]) else os.path.join(root, cells[0])
            rows.append((video, cells[1], split))
    if not rows:
        raise UserError(f"{path} lists no videos; add rows of path,label[,split].")
    return rows


def scan_folders(root: str) -> list[tuple[str, str, str | None]]:
    """(video path, class, split or None) from <class>/... or <split>/<class>/... folders."""
    top = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    split_dirs = {d: _split_name(d) for d in top}
    if top and all(split_dirs.values()):
        layout = [(os.path.join(root, d), split_dirs[d]) for d in top]
    else:
        layout = [(root, None)]
    rows = []
    for folder, split in layout:
        for label in sorted(os.listdir(folder)):
            class_dir = os.path.join(folder, label)
            if not os.path.isdir(class_dir):
                continue
            for directory, dirs, files in os.walk(class_dir):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(manual_video.VIDEO_EXTENSIONS):
                        rows.append((os.path.join(directory, name), label, split))
    if not rows:
        raise UserFileError(
            f"Found no videos in class folders under {root} (looked for "
            f"{', '.join(manual_video.VIDEO_EXTENSIONS)} in {root}/<class>/ or "
            f"{root}/<split>/<class>/); put each class's videos in a folder named after it."
        )
    return rows


def _sorted_labels(labels) -> list[str]:
    labels = set(labels)
    if all(label.isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def assign(rows: list[tuple[str, str, str | None]]) -> tuple[list[str], dict[str, list[VideoItem]]]:
    """Class names and per-split VideoItems; rows without a split are divided per class."""
    names = _sorted_labels(label for _, label, _ in rows)
    index = {name: i for i, name in enumerate(names)}
    common = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p, _, _ in rows])
    splits: dict[str, list[VideoItem]] = {}
    unsplit: dict[str, list[str]] = {}
    seen = set()

    def add(split, path, label):
        video_id = os.path.splitext(os.path.relpath(os.path.abspath(path), common))[0]
        if (split, video_id) in seen:
            raise UserError(f"{path} is listed twice in {split}; list each video once.")
        seen.add((split, video_id))
        present = path if os.path.isfile(path) else None
        splits.setdefault(split, []).append(VideoItem(video_id, present, index[label]))

    for path, label, split in rows:
        if split is None:
            unsplit.setdefault(label, []).append(path)
        else:
            add(split, path, label)
    for label, paths in sorted(unsplit.items()):
        paths = sorted(paths)
        held_out = math.floor(len(paths) * VALIDATION_FRACTION + 0.5) if len(paths) > 1 else 0
        held_out = max(held_out, 1 if len(paths) > 1 else 0)
        for i, path in enumerate(paths):
            add("validation" if i >= len(paths) - held_out else "train", path, label)
    if "train" not in splits:
        raise UserError(
            "No video is in the train split; give some videos split train (or none "
            "a split, to divide each class's videos automatically)."
        )
    return names, splits
