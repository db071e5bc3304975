"""Classify video files with a trained run: top-k labels with probabilities.

  python -m video_s3d.predict --workdir=runs/s3dg --video=clip.mp4 [--top_k=5] [--json]
  python -m video_s3d.predict --workdir=runs/s3dg --video=folder/ --json > predictions.jsonl
  python -m video_s3d.predict --workdir=runs/rgb --flow_workdir=runs/flow --video=clip.mp4

--workdir: a training (or import_weights) run, its checkpoints/ folder or one step folder in
it; --step picks the checkpoint (default best). --video: a file in any container PyAV reads
(mp4, webm, avi, mkv, ...), a folder (searched recursively) or a glob pattern. Views are
sampled as evaluation samples them (see video_s3d/inference.py). An unreadable file gets one
line and the rest go on; the exit status is 1 only if every file failed (2 for a bad argument).
--flow_workdir: a flow run (trained on a flow config) whose input is computed from each video
with our TV-L1, for the flow fields its views use only; the two streams' logits are fused
(video_s3d/two_stream.py, --fusion) into one prediction.

A detection run (config.task='detection', or --task=detection) draws its boxes and labels
instead: a contact sheet per video (and with --annotated_video an mp4) in --out, and its best
action tubes printed (video_s3d/detection/predict.py).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from video_s3d import arguments, inference, two_stream
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
    parser.add_argument(
        "--flow_workdir",
        default=None,
        help="a flow run to fuse with --workdir's RGB run (two-stream prediction)",
    )
    parser.add_argument(
        "--fusion",
        default="logits",
        choices=("logits", "softmax"),
        help="two-stream fusion: mean of logits (the I3D release's) or of softmax scores",
    )
    parser.add_argument(
        "--task",
        choices=("classification", "detection"),
        default=None,
        help="what the run predicts (default: the run's own config.task)",
    )
    parser.add_argument(
        "--out", default="detections", help="detection: folder for the drawn contact sheets"
    )
    parser.add_argument(
        "--annotated_video", action="store_true", help="detection: also write annotated mp4s"
    )
    parser.add_argument(
        "--min_score", type=float, default=0.3, help="detection: draw detections above this"
    )
    parser.add_argument(
        "--sheet_frames", type=int, default=8, help="detection: frames on each contact sheet"
    )
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
    from video_s3d.detection import predict as detection_predict

    trained_for = detection_predict.run_task(args.workdir)
    if (args.task or trained_for) == "detection":
        return detection_predict.main(args)
    if trained_for == "detection":
        print(f"Error: {args.workdir} is a detection run; drop --task.", file=sys.stderr)
        return 2
    try:
        videos = inference.list_videos(args.video)
        run = inference.load_run(
            args.workdir, step=args.step, num_clips=args.num_clips, num_crops=args.num_crops
        )
        flow_run = None
        if args.flow_workdir:
            flow_run = inference.load_run(
                args.flow_workdir,
                step=args.step,
                num_clips=args.num_clips,
                num_crops=args.num_crops,
            )
            two_stream.check_pair(run, flow_run)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"{run.describe()}; {len(videos)} video(s)", file=sys.stderr, flush=True)
    if flow_run is not None:
        print(f"fused ({args.fusion}) with {flow_run.describe()}", file=sys.stderr, flush=True)
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
        probabilities = inference.softmax(logits)
        if flow_run is not None:
            try:
                flow_logits, _ = flow_run.classify(flow_run.views(flow_run.read(path)))
            except inference.UnreadableVideo as flow_error:
                print(f"{counter} {path}: unreadable video ({flow_error}); skipped", flush=True)
                continue
            probabilities = two_stream.probabilities(logits, flow_logits, args.fusion)
        best = top_k(probabilities, run.class_names, k)
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
