"""Classify video files with a trained run: top-k labels with probabilities.

  python -m video_s3d.predict --workdir=runs/s3dg --video=clip.mp4 [--top_k=5] [--json]
  python -m video_s3d.predict --workdir=runs/s3dg --video=folder/ --json > predictions.jsonl

--workdir: a training (or import_weights) run, its checkpoints/ folder or one step folder in
it; --step picks the checkpoint (default best). --video: a file in any container PyAV reads
(mp4, webm, avi, mkv, ...), a folder (searched recursively) or a glob pattern. Views are
sampled as evaluation samples them (see video_s3d/inference.py). An unreadable file gets one
line and the rest go on; the exit status is 1 only if every file failed (2 for a bad argument).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from video_s3d import arguments, inference
from video_s3d.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = inference.argument_parser("video_s3d.predict", __doc__)
    arguments.add_video(parser)
    parser.add_argument("--top_k", type=int, default=5, help="labels to print per video")
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per file on stdout (progress goes to stderr)",
    )
    arguments.add_views(parser)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error(f"--top_k={args.top_k} must be at least 1.")
    return args


def top_k(probabilities: np.ndarray, class_names: list[str], k: int) -> list[dict]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [
        {"label": class_names[i], "index": int(i), "probability": float(probabilities[i])}
        for i in order
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    inference.setup_process()
    try:
        videos = inference.list_videos(args.video)
        run = inference.load_run(
            args.workdir, step=args.step, num_clips=args.num_clips, num_crops=args.num_crops
        )
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"{run.describe()}; {len(videos)} video(s)", file=sys.stderr, flush=True)
    k = min(args.top_k, run.num_classes)
    counter_width = len(str(len(videos)))
    succeeded = 0
    for index, path, _, views, error in inference.iterate_videos(run, videos):
        counter = f"[{index + 1:>{counter_width}}/{len(videos)}]"
        if error is not None:
            if args.json:
                print(json.dumps({"video": path, "error": error}), flush=True)
            else:
                print(f"{counter} {path}: unreadable video ({error}); skipped", flush=True)
            continue
        logits, _ = run.classify(views)
        best = top_k(inference.softmax(logits), run.class_names, k)
        succeeded += 1
        if args.json:
            print(
                json.dumps(
                    {"video": path, "step": run.step, "num_views": len(views), "top_k": best}
                ),
                flush=True,
            )
            print(f"{counter} {path}", file=sys.stderr, flush=True)
        else:
            shown = "  ".join(f"{p['label']} {100 * p['probability']:.1f}%" for p in best)
            print(f"{counter} {path}: {shown}", flush=True)
    if not succeeded:
        print(f"Error: none of the {len(videos)} video(s) could be read.", file=sys.stderr)
        return 1
    return 0


def cli() -> None:
    """The console script (pyproject.toml)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
