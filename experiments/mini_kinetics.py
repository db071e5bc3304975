r"""Makes a Mini-Kinetics manual dir: the Kinetics-400 annotations restricted to a class list
(and, optionally, to listed YouTube ids), with symlinks to the chosen clips, no copies.

The paper ran its bottom-/top-heavy sweeps on Mini-Kinetics-200 (200 classes; the official
train/val YouTube id lists are at github.com/s9xie/Mini-Kinetics-200). The Kinetics builder
takes its classes from the annotation CSVs, so building this folder into its own TFDS data
dir gives the subset dataset:

  python -m experiments.mini_kinetics --train_csv=/data/k400/annotations/train.csv \
      --val_csv=/data/k400/annotations/validate.csv --video=/data/k400 \
      --train_ids=train_ytid_list.txt --val_ids=val_ytid_list.txt --out=/data/mini_k200
  python -m video_s3d.data.build --dataset=kinetics400 --manual_dir=/data/mini_k200 \
      --data_dir=/data/mini_k200_tfds

--classes takes a file with one class name per line or a comma-separated list; without it
the classes are those of the videos in --train_ids.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from typing import Iterable, Sequence

from video_s3d import arguments
from video_s3d.data.builders import manual_video
from video_s3d.errors import UserError, UserFileError

FIELDS = ("label", "youtube_id", "time_start", "time_end", "split")
OUTPUT_CSV = {"train": "train.csv", "validation": "validate.csv"}


def read_names(spec: str) -> list[str]:
    """A file of names (one per line) or a comma-separated list of names."""
    if os.path.isfile(spec):
        with open(spec, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    return [name.strip() for name in spec.split(",") if name.strip()]


def read_rows(path: str) -> list[dict[str, str]]:
    if not os.path.isfile(path):
        raise UserFileError(
            f"Annotation file {path} does not exist; pass the official "
            "Kinetics-400 CSV (columns label,youtube_id,time_start,time_end)."
        )
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(FIELDS[:4]) - set(reader.fieldnames or ())
        if missing:
            raise UserError(
                f"{path} lacks the columns {sorted(missing)}; pass the official Kinetics-400 CSV."
            )
        return list(reader)


def clip_id(row: dict[str, str]) -> str:
    """The clip file stem the Kinetics builder looks for: <youtube_id>_<start:06d>_<end:06d>."""
    return (
        f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
    )


def select_rows(
    rows: Iterable[dict[str, str]], classes: set[str] | None, ids: set[str] | None
) -> list[dict[str, str]]:
    return [
        row
        for row in rows
        if (classes is None or row["label"] in classes)
        and (ids is None or row["youtube_id"] in ids)
    ]


def make_subset(
    splits: dict[str, list[dict[str, str]]], videos_root: str, out_dir: str, log=print
) -> dict[str, tuple[int, int]]:
    """Writes out_dir/annotations/*.csv and out_dir/videos/<clip> symlinks; returns, per split,
    (rows written, clips found)."""
    videos = manual_video.index_videos(videos_root)
    os.makedirs(os.path.join(out_dir, "annotations"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    counts = {}
    for split, rows in splits.items():
        found = 0
        with open(
            os.path.join(out_dir, "annotations", OUTPUT_CSV[split]),
            "w",
            newline="",
            encoding="utf-8",
        ) as f:
            writer = csv.DictWriter(f, FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "split": row.get("split") or split})
                source = videos.get(clip_id(row)) or videos.get(row["youtube_id"])
                if source is None:
                    continue  # the builder skips and reports missing clips itself
                link = os.path.join(out_dir, "videos", os.path.basename(source))
                if not os.path.lexists(link):
                    os.symlink(os.path.abspath(source), link)
                found += 1
        counts[split] = (len(rows), found)
        log(f"{split}: {len(rows)} clips listed, {found} found under {videos_root}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("experiments.mini_kinetics", __doc__)
    parser.add_argument("--train_csv", required=True)
    parser.add_argument("--val_csv", required=True)
    arguments.required(
        parser, parser.add_argument("--video", help="folder holding the Kinetics-400 clips")
    )
    parser.add_argument("--out", required=True, help="the new manual dir")
    parser.add_argument(
        "--classes", help="file of class names (one per line) or a comma-separated list"
    )
    parser.add_argument("--train_ids", help="file of YouTube ids to keep in train (one per line)")
    parser.add_argument("--val_ids", help="file of YouTube ids to keep in validation")
    arguments.alias(parser, "--videos", "--video")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.classes and not args.train_ids:
        parser.error("pass --classes or --train_ids (the classes are then those of its videos).")
    try:
        print(make_from_args(args))
    except UserError as error:  # anything else is a bug and keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def make_from_args(args: argparse.Namespace) -> str:
    """Writes the subset the flags describe; returns the line that says how to build it."""
    if not os.path.isdir(args.video):
        raise UserFileError(
            f"--video={args.video} is not a folder; point it at the Kinetics clips."
        )
    train_ids = set(read_names(args.train_ids)) if args.train_ids else None
    val_ids = set(read_names(args.val_ids)) if args.val_ids else None
    train_rows, val_rows = read_rows(args.train_csv), read_rows(args.val_csv)
    if args.classes:
        classes = set(read_names(args.classes))
        unknown = sorted(classes - {row["label"] for row in train_rows})
        if unknown:
            raise UserError(
                f"{len(unknown)} class names are not in {args.train_csv}, e.g. "
                f"{unknown[0]!r}; use the exact Kinetics-400 names."
            )
    else:
        classes = {row["label"] for row in select_rows(train_rows, None, train_ids)}
    splits = {
        "train": select_rows(train_rows, classes, train_ids),
        "validation": select_rows(val_rows, classes, val_ids),
    }
    make_subset(splits, args.video, args.out)
    return (
        f"{len(classes)} classes; build it with: python -m video_s3d.data.build "
        f"--dataset=kinetics400 --manual_dir={args.out} --data_dir=<its own TFDS folder>"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
