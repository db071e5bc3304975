"""Kinetics-400/600/700 from the official CSV annotations and the downloaded clips."""

from __future__ import annotations

import csv
import os

from video_s3d.data.builders import manual_video
from video_s3d.data.builders.manual_video import VideoConfig, VideoItem
from video_s3d.errors import UserError

_SPLIT_FILES = {  # our split -> annotation file stems used by the releases and mirrors
    "train": ("train",),
    "validation": ("validate", "val", "validation"),
    "test": ("test",),
}


def _instructions(n: int) -> str:
    return f"""\
  Manual dir layout for Kinetics-{n} (sub-folders of videos are fine, e.g. the CVDF mirror's
  k{n}/{{train,val,test}}/ folders):
    annotations/train.csv   (or train.csv, kinetics{n}_train.csv, kinetics-{n}_train.csv)
    annotations/val.csv     (or validate.csv, ...)
    annotations/test.csv    (optional; used only if it has a 'label' column)
    **/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4   (or <youtube_id>.mp4; mp4/webm/mkv)
  CSV columns: label,youtube_id,time_start,time_end,split[,is_cc]. Missing clips (Kinetics
  videos disappear from YouTube) are skipped and listed in the build summary.
  """


class _Kinetics(manual_video.ManualVideoBuilder, skip_registration=True):
    """Kinetics human action clips (~10 s each), resampled to 25 fps, short side 256."""

    NUM_CLASSES = 0
    BUILDER_CONFIGS = manual_video.with_flow_twins(
        [VideoConfig(name="default", fps=25.0, short_side=256)]
    )
    MANUAL_DIR_SUMMARY = (
        "the official CSVs (train.csv, validate.csv, test.csv, or "
        "annotations/*.csv) and the clip files named YOUTUBEID_START_END.mp4"
    )

    def list_videos(self, manual_dir):
        n = self.NUM_CLASSES
        rows_by_split = {}
        for split, stems in _SPLIT_FILES.items():
            names = [
                f"{prefix}{stem}.csv"
                for stem in stems
                for prefix in ("", f"kinetics{n}_", f"kinetics-{n}_", f"kinetics_{n}_")
            ]
            path = manual_video.find_file(
                manual_dir,
                [os.path.join("annotations", name) for name in names] + names,
                f"the Kinetics-{n} {split} CSV",
                required=split != "test",
            )
            if path is None:
                continue
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
            if "label" not in (reader.fieldnames or ()):
                if split != "test":
                    raise UserError(
                        f"{path} has no 'label' column: use the official Kinetics CSVs."
                    )
                continue  # an unlabelled test set is of no use for evaluation
            rows_by_split[split] = rows
        class_names = sorted({row["label"] for row in rows_by_split["train"]})
        label_of = {name: i for i, name in enumerate(class_names)}
        videos = manual_video.index_videos(manual_dir)
        splits = {}
        for split, rows in rows_by_split.items():
            items = []
            for row in rows:
                if row["label"] not in label_of:
                    raise UserError(
                        f"Class {row['label']!r} of a {split} video is not in the train CSV: "
                        f"use the annotation files of one Kinetics release."
                    )
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
                clip_id = f"{row['youtube_id']}_{start:06d}_{end:06d}"
                path = videos.get(clip_id) or videos.get(row["youtube_id"])
                items.append(VideoItem(clip_id, path, label_of[row["label"]]))
            splits[split] = items
        return class_names, splits


class Kinetics400(_Kinetics):
    NUM_CLASSES = 400
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions(400)


class Kinetics600(_Kinetics):
    NUM_CLASSES = 600
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions(600)


class Kinetics700(_Kinetics):
    NUM_CLASSES = 700
    MANUAL_DOWNLOAD_INSTRUCTIONS = _instructions(700)
