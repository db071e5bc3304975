r"""Peak memory of `predict`'s video reading on long clips: whole video vs. the frames used.

    python -m video_s3d.predict_bench [--video_seconds=10,40] [--video_size=640x360] \
        [--short_side=256]

Encodes a synthetic clip of each length (streamed to the encoder, never held whole), then
in a fresh subprocess per (length, mode) reads it and cuts the evaluation views:
`whole` decodes every frame first (`video_files.read_video`, what predict did before),
`selected` decodes to pixels only the frames the views use (`inference.read_frames_for_views`,
what `Run.read` does now). Peak memory is the subprocess's maximum resident set size after
reading minus the same after its imports, so the libraries' own footprint is left out.
Prints one table; the numbers are this machine's, to compare side by side, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from video_s3d import arguments


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_long_video(path: str, seconds: float, width: int, height: int, fps: int = 25) -> int:
    """A moving colour ramp, encoded frame by frame (H.264, fastest preset); returns frames."""
    import av

    count = int(round(seconds * fps))
    ys, xs = np.mgrid[0:height, 0:width]
    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "ultrafast"}
        for t in range(count):
            frame = np.stack(
                [(xs + 4 * t) % 256, (ys + 2 * t) % 256, np.full_like(xs, (t * 3) % 256)], axis=-1
            ).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return count


def measure(mode: str, path: str, settings: dict) -> dict:
    """In this process: read `path` in `mode`, cut the views; peak memory above the imports."""
    from video_s3d import inference
    from video_s3d.data import video_ops  # noqa: F401 -- TensorFlow's footprint is baseline
    from video_s3d.data.builders import video_files

    baseline = _peak_mib()
    started = time.perf_counter()
    window = dict(
        num_frames=settings["num_frames"],
        stride=settings["stride"],
        num_clips=settings["num_clips"],
    )
    if mode == "whole":
        frames, _ = video_files.read_video(path, fps=None, short_side=settings["short_side"])
    else:
        frames = inference.read_frames_for_views(
            path, fps=None, short_side=settings["short_side"], **window
        )
    views = inference.evaluation_views(
        frames,
        crop_size=settings["crop_size"],
        num_crops=settings["num_crops"],
        central_fraction=0.875,
        **window,
    )
    seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "frames": len(frames),
        "views": list(views.shape),
        "peak_above_imports_mib": _peak_mib() - baseline,
        "seconds": seconds,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.predict_bench", __doc__.split("\n\n")[0])
    parser.add_argument(
        "--video_seconds", default="10,40", help="source video lengths, comma-separated"
    )
    parser.add_argument("--video_size", default="640x360", help="source WIDTHxHEIGHT")
    parser.add_argument(
        "--short_side", type=int, default=256, help="decode size (the datasets' usual short side)"
    )
    parser.add_argument("--num_frames", type=int, default=16)
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--num_clips", type=int, default=4)
    parser.add_argument("--num_crops", type=int, default=1)
    parser.add_argument("--crop_size", type=int, default=112)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # subprocess mode
    parser.add_argument("--video", default=None, help=argparse.SUPPRESS)
    # --seconds is a measuring time and --size a crop side elsewhere (--size is retired).
    arguments.alias(parser, "--seconds", "--video_seconds")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    settings = {
        k: getattr(args, k)
        for k in ("short_side", "num_frames", "stride", "num_clips", "num_crops", "crop_size")
    }
    if args.measure:
        print(json.dumps(measure(args.measure, args.video, settings)))
        return 0

    width, height = (int(v) for v in args.video_size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for seconds in (float(s) for s in args.video_seconds.split(",")):
            path = os.path.join(folder, f"clip_{seconds:g}s.mp4")
            write_long_video(path, seconds, width, height)
            for mode in ("whole", "selected"):
                command = [
                    sys.executable,
                    "-m",
                    "video_s3d.predict_bench",
                    f"--measure={mode}",
                    f"--video={path}",
                ] + [f"--{k}={v}" for k, v in settings.items()]
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    check=True,
                    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                )
                rows.append((seconds, json.loads(done.stdout.strip().splitlines()[-1])))
    print(
        f"source {width}x{height} at 25 fps, decoded at short side {args.short_side}; views: "
        f"{args.num_clips} clips x {args.num_crops} crops of {args.num_frames} frames "
        f"(stride {args.stride}) at {args.crop_size}"
    )
    print(f"{'length':>8}  {'frames':>6}  {'mode':<8}  {'peak MiB':>9}  {'seconds':>7}")
    for seconds, row in rows:
        print(
            f"{seconds:>7g}s  {row['frames']:>6d}  {row['mode']:<8}  "
            f"{row['peak_above_imports_mib']:>9.1f}  {row['seconds']:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
