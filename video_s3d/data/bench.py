"""Input pipeline benchmark: training frames per second per CPU core, against the decoder alone.

    python -m video_s3d.data.bench [--num_frames=32] [--crop_size=224] [--width=340] [--seconds=3]

Writes DMVR shards of 256-short-side JPEG clips to a temp dir, then, for both training crops
(`paper`: a fixed crop_size square of the stored frames, never resized; `random_resized`:
random 40-100% area and 3/4-4/3 aspect, resized), measures side by side in alternating rounds,
on ONE thread (tf.data and TF ops limited to one) and in CPU seconds of this process (so other
jobs on a shared machine do not skew it):

  - the whole train pipeline (read -> sample -> shuffle -> decode+crop -> [resize] -> uint8
    batch + flip flags; the train step mirrors on the device), with the fused `decode_and_crop`
    and with whole-frame decoding then cropping;
  - `decode_and_crop` alone on the same frames and the same kind of crop windows;
  - each per-clip step alone (and the host flip the pipeline no longer does, for reference),
    and what is left for reading, shuffling and batching.

Prints frames/s/core of each, the pipeline's ratio to the decoder alone (the target for the
paper crop is >= 0.8), clips/s at 64 frames, and an ESTIMATE of the host cores one accelerator
training S3D-G at 64x224^2 needs, from a cited peak and an assumed utilisation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from video_s3d import arguments

# NVIDIA H100 / H200 SXM, dense BF16 tensor-core peak in TFLOP/s (NVIDIA's datasheet gives
# 1,979 "with sparsity", dense is half: 989.4; the H200 has the H100's compute with more
# memory). The utilisations are assumptions: no model FLOP utilisation of S3D-G training on
# these GPUs is published; the accelerator check (perf) measures it.
PEAK_BF16_TFLOPS = 989.4
ASSUMED_UTILISATIONS = (0.1, 0.2, 0.4)
CROP_MODES = ("paper", "random_resized")


def _make_jpegs(height: int, width: int, count: int = 16) -> list[bytes]:
    """Distinct photo-like frames: a textured moving object on a textured background + noise."""
    from video_s3d.data.builders import common, synthetic_render

    size = max(height, width)
    clip = synthetic_render.make_clip("appearance", 3, (1,), count, size)[:, :height, :width]
    noise = np.random.default_rng(0).normal(0, 3, clip.shape)  # camera-like grain
    frames = np.clip(clip + noise, 0, 255).astype(np.uint8)
    return common.encode_jpeg(frames)


def write_clips(
    directory: str,
    *,
    num_videos: int = 12,
    frames_per_video: int = 96,
    height: int = 256,
    width: int = 340,
) -> str:
    """DMVR shards of JPEG clips; returns the dataset name for the pipeline."""
    from video_s3d.data import dmvr

    jpegs = _make_jpegs(height, width)
    records = [
        dmvr.make_example(
            [jpegs[(v + i) % len(jpegs)] for i in range(frames_per_video)], label=v % 4
        )
        for v in range(num_videos)
    ]
    dmvr.write_shards(records, directory, "train", num_shards=2)
    return f"dmvr:{directory}/train-*?num_classes=4"


def _one_core(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def measure(
    name: str,
    *,
    fused: bool,
    num_frames: int,
    crop_size: int,
    batch_size: int,
    seconds: float,
    train_crop: str = "random_resized",
) -> float:
    """Frames per CPU-second of the train pipeline run on one thread, after a warm-up batch.

    CPU time of this process, not wall time, so other jobs on a shared machine do not count.
    """
    from video_s3d.data import pipeline

    ds = _one_core(
        pipeline.train_dataset(
            name,
            batch_size=batch_size,
            num_frames=num_frames,
            crop_size=crop_size,
            seed=0,
            process_index=0,
            process_count=1,
            shuffle_buffer=8,
            fused_decode=fused,
            crop_area_range=(0.4, 1.0),
            train_crop=train_crop,
        )
    )
    iterator = iter(ds)
    next(iterator)
    clips, started = 0, time.process_time()
    while time.process_time() - started < seconds:
        np.asarray(next(iterator)["video"])  # as the trainer takes it (no copy)
        clips += batch_size
    rate = clips * num_frames / (time.process_time() - started)
    del iterator  # stops its threads before the next measurement
    return rate


def _per_frame_ms(fn, inputs: list, frames_per_call: int, seconds: float) -> float:
    """CPU milliseconds per frame of `fn(*inputs[i])`, cycling through `inputs`, after a warm-up."""
    fn(*inputs[0])
    calls, started = 0, time.process_time()
    while time.process_time() - started < seconds:
        fn(*inputs[calls % len(inputs)])
        calls += 1
    return (time.process_time() - started) * 1000 / (calls * frames_per_call)


def crop_windows(train_crop: str, image_hw, crop_size: int, count: int):
    """`count` of the pipeline's crop windows for one frame shape and crop mode."""
    import tensorflow as tf

    from video_s3d.data import video_ops

    seeds = [tf.constant([i, 1], tf.int64) for i in range(count)]
    if train_crop == "paper":
        return [video_ops.fixed_crop_window(image_hw, crop_size, seed) for seed in seeds]
    return [video_ops.random_crop_window(image_hw, seed) for seed in seeds]


def step_profile(
    jpegs: list[bytes],
    *,
    train_crop: str,
    num_frames: int,
    crop_size: int,
    seconds: float,
    num_windows: int = 4,
) -> dict[str, float]:
    """CPU ms per frame of each per-clip step of the train pipeline, alone on one clip.

    The steps get the inputs they get in the pipeline: `num_frames` JPEGs and the mode's crop
    windows; flip and resize the fused decode's uint8 crops (resize is a no-op for the paper
    crop; the flip is shown for reference: the pipeline leaves it to the device).
    'decode: fused, 16x16 at the bottom-right' is the least any crop can cost:
    libjpeg-turbo skips the inverse DCT, upsampling and colour conversion outside the crop, but
    must still Huffman-decode every block of every row down to the crop's last one.
    """
    import tensorflow as tf

    from video_s3d.data import video_ops

    clip = tf.constant([jpegs[i % len(jpegs)] for i in range(num_frames)])
    image_hw = video_ops.frame_shape(clip[0])
    windows = crop_windows(train_crop, image_hw, crop_size, num_windows)
    corner = tf.concat([image_hw - 16, [16, 16]], axis=0)
    crops = [video_ops.decode_and_crop(clip, window) for window in windows]

    def per_clip(fn):  # traced for any frame size, as in the pipeline's maps
        return tf.function(fn, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])

    steps = {
        "decode: whole frame, then crop": (
            tf.function(video_ops.decode_then_crop),
            [(clip, w) for w in windows],
        ),
        DECODE_ALONE: (tf.function(video_ops.decode_and_crop), [(clip, w) for w in windows]),
        "decode: fused, 16x16 at the bottom-right": (
            tf.function(video_ops.decode_and_crop),
            [(clip, corner)],
        ),
        HOST_FLIP: (per_clip(video_ops.mirror), [(f,) for f in crops]),
        f"resize to {crop_size} (uint8; only if not that size)": (
            per_clip(lambda frames: video_ops.resize(frames, crop_size)),
            [(f,) for f in crops],
        ),
    }
    return {
        name: _per_frame_ms(fn, inputs, num_frames, seconds) for name, (fn, inputs) in steps.items()
    }


DECODE_ALONE = "decode: fused decode_and_crop"
HOST_FLIP = "flip (uint8 crop) on the host: not in the pipeline, done on the device"


def _pixel_difference(name: str, crop_size: int) -> int:
    """Largest difference in grey levels between the two decode paths on the same crops."""
    from video_s3d.data import pipeline

    batches = [
        next(
            iter(
                pipeline.train_dataset(
                    name,
                    batch_size=2,
                    num_frames=4,
                    crop_size=crop_size,
                    seed=5,
                    process_index=0,
                    process_count=1,
                    shuffle_buffer=4,
                    fused_decode=fused,
                )
            )
        )["video"]
        .numpy()
        .astype(int)
        for fused in (True, False)
    ]
    return int(np.abs(batches[0] - batches[1]).max())


def _format(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            [f"{row[0]:<{widths[0]}}"]
            + [f"{cell:>{width}}" for cell, width in zip(row[1:], widths[1:])]
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def _step_rows(mode: str, steps: dict[str, float], fused_rate: float) -> list[tuple[str, str]]:
    """Per-step ms/frame and what is left for reading, sampling, shuffling and batching."""
    in_pipeline = [name for name in steps if not name.startswith("decode") and name != HOST_FLIP]
    # The rest of the pipeline's time is measured (whole pipeline minus its steps), not summed.
    accounted = steps[DECODE_ALONE] + sum(steps[name] for name in in_pipeline)
    rows = [(f"per-step CPU ms per frame, {mode} crop", "ms/frame")]
    rows += [(f"  {name}", f"{value:.3f}") for name, value in steps.items()]
    rows += [
        ("  rest: read, sample, shuffle, batch, tf.data", f"{1000 / fused_rate - accounted:.3f}"),
        ("  full pipeline, fused (1000 / frames/s)", f"{1000 / fused_rate:.3f}"),
        (
            "  whole-frame / fused decode",
            f"{steps['decode: whole frame, then crop'] / steps[DECODE_ALONE]:.2f}x",
        ),
    ]
    return rows


def run(
    *,
    num_frames: int,
    crop_size: int,
    batch_size: int,
    height: int,
    width: int,
    seconds: float,
    rounds: int,
) -> str:
    import tensorflow as tf

    try:  # one thread for TF ops too; impossible once TF has run an op (then tf.data's
        # one-thread options still bound the pipeline, but ops outside it may use more)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:
        pass
    settings = dict(
        num_frames=num_frames, crop_size=crop_size, batch_size=batch_size, seconds=seconds
    )
    results = {mode: {"fused": [], "whole": [], "steps": []} for mode in CROP_MODES}
    with tempfile.TemporaryDirectory() as directory:
        name = write_clips(directory, height=height, width=width)
        jpegs = _make_jpegs(height, width)
        print(
            f"Clips: DMVR shards of {height}x{width} JPEG frames (q90); {rounds} alternating "
            f"rounds of {seconds:g} CPU-s per measurement, one thread...",
            flush=True,
        )
        difference = _pixel_difference(name, crop_size)
        for r in range(rounds):  # alternating, so load changes on a shared machine hit every path
            for mode in CROP_MODES:
                result = results[mode]
                result["steps"].append(
                    step_profile(
                        jpegs,
                        train_crop=mode,
                        num_frames=num_frames,
                        crop_size=crop_size,
                        seconds=seconds / 2,
                    )
                )
                result["fused"].append(measure(name, fused=True, train_crop=mode, **settings))
                result["whole"].append(measure(name, fused=False, train_crop=mode, **settings))
                decoder = 1000 / result["steps"][-1][DECODE_ALONE]
                print(
                    f"  round {r + 1}/{rounds}, {mode}: pipeline {result['fused'][-1]:.0f}, decoder "
                    f"alone {decoder:.0f} frames/s/core",
                    flush=True,
                )
        print("  64-frame clips, paper crop...", flush=True)
        frames_64 = measure(
            name,
            fused=True,
            train_crop="paper",
            **{**settings, "num_frames": 64, "batch_size": max(1, batch_size // 2)},
        )

    rows = [
        (
            "train crop (one thread)",
            "pipeline f/s/core",
            "decoder alone f/s/core",
            "pipeline/decoder",
            "whole-frame pipeline",
            "fused/whole",
        )
    ]
    step_rows = []
    for mode in CROP_MODES:
        result = results[mode]
        steps = {
            key: float(np.median([s[key] for s in result["steps"]])) for key in result["steps"][0]
        }
        fused, whole = float(np.median(result["fused"])), float(np.median(result["whole"]))
        decoder = 1000 / steps[DECODE_ALONE]
        rows.append(
            (
                mode,
                f"{fused:.0f}",
                f"{decoder:.0f}",
                f"{fused / decoder:.2f}x",
                f"{whole:.0f}",
                f"{fused / whole:.2f}x",
            )
        )
        step_rows.append(_step_rows(mode, steps, fused))
    lines = _format(rows)
    for profile in step_rows:
        lines += [""] + _format(profile)
    lines += [
        "",
        f"{num_frames}-frame clips, {crop_size}x{crop_size} crops of {height}x{width} frames, "
        f"median of {rounds} rounds; fused vs whole-frame pixels: max difference {difference} "
        f"grey levels",
        f"64-frame clips, paper crop: {frames_64:.0f} frames/s/core = {frames_64 / 64:.2f} "
        f"clips/s/core",
        "",
    ] + cores_per_accelerator(frames_64 / 64)
    return "\n".join(lines)


def cores_per_accelerator(clips_64_per_core: float) -> list[str]:
    """ESTIMATED host cores per accelerator training S3D-G at 64x224^2, per assumed utilisation."""
    from video_s3d import cost

    gmacs = cost.gmacs("s3dg", 64, 224)
    # A training step is about 3x a forward pass (forward, then gradients w.r.t. activations
    # and weights), and one multiply-add is 2 FLOP.
    gflop_per_clip = 3 * 2 * gmacs
    lines = [
        f"ESTIMATE (no accelerator measured here): host cores to feed one H100/H200 training "
        f"S3D-G at 64x224^2 ({gmacs:.1f} G multiply-adds forward per clip, video_s3d.cost; "
        f"~{gflop_per_clip:.0f} GFLOP per training clip; peak {PEAK_BF16_TFLOPS:g} dense "
        f"BF16 TFLOP/s, NVIDIA datasheet; utilisation assumed, not published):"
    ]
    for utilisation in ASSUMED_UTILISATIONS:
        clips = PEAK_BF16_TFLOPS * 1e3 * utilisation / gflop_per_clip
        lines.append(
            f"  at {utilisation:.0%} of peak: {clips:.0f} clips/s = {clips * 64:,.0f} "
            f"frames/s -> {clips / clips_64_per_core:.0f} cores like this one"
        )
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.data.bench", __doc__.split("\n\n")[0])
    parser.add_argument("--num_frames", type=int, default=32, help="frames per training clip")
    parser.add_argument("--crop_size", type=int, default=224, help="training crop side")
    parser.add_argument("--batch_size", type=int, default=4, help="clips per batch")
    parser.add_argument(
        "--height", type=int, default=256, help="stored frame height (the short side)"
    )
    parser.add_argument("--width", type=int, default=340, help="stored frame width")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="CPU seconds per measurement per round"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds (median reported)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(
        run(
            num_frames=args.num_frames,
            crop_size=args.crop_size,
            batch_size=args.batch_size,
            height=args.height,
            width=args.width,
            seconds=args.seconds,
            rounds=args.rounds,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
