r"""Accelerator check: train-step speed, model FLOP utilisation and memory of I3D / S3D / S3D-G,
and the input pipeline's frames/s with every host core; one table, one JSON file.

  launch/accelerator_check.sh                     # installs jax[cuda12], then runs this
  python -m video_s3d.accel_check --out=accel.json           # 64x224^2 bf16, batch 8
  python -m video_s3d.accel_check --tiny          # CPU smoke run: tiny models, 8x32^2

Per model: the SGD training step (forward, backward, momentum update; models/bench.py) on one
device, median over --steps after compile and one warm-up; clips/s; model FLOP utilisation =
6 x (multiply-adds per clip, video_s3d.cost) x clips/s / the device's peak dense bf16 FLOP/s
(training = forward + backward ~ 3x the forward's 2 FLOPs per multiply-add); peak memory (the
device's own counter where it has one, else XLA's memory analysis). Stops starting models
once --budget_s is spent, so the whole check stays under 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence

import jax

from video_s3d import arguments, cost, models, runtime
from video_s3d.errors import UserError
from video_s3d.models import bench as model_bench

# Peak dense (no sparsity) bf16 tensor FLOP/s, by a substring of jax's device_kind.
PEAK_BF16_FLOPS = {
    # NVIDIA H200 datasheet: 1,979 TFLOPS BF16 "with sparsity" -> 989.5 dense.
    "H200": 989.5e12,
    # NVIDIA H100 datasheet, SXM: 1,979 TFLOPS BF16 with sparsity -> 989.5 dense
    # (PCIe: 1,513 with sparsity -> 756.5 dense).
    "H100 PCIe": 756.5e12,
    "H100": 989.5e12,
    # NVIDIA A100 datasheet: 312 TFLOPS BF16 dense (624 with sparsity).
    "A100": 312e12,
    # Google Cloud TPU docs, "TPU v4": 275 TFLOPS bf16 per chip.
    "TPU v4": 275e12,
    # Google Cloud TPU docs, "TPU v5e": 197 TFLOPS bf16 per chip (jax device_kind "TPU v5 lite").
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
}
FULL_MODELS = ("i3d", "s3d", "s3dg")
TINY_MODELS = ("tiny_i3d", "tiny_s3d", "tiny_s3dg")


def peak_flops(device_kind: str) -> float | None:
    for key, flops in PEAK_BF16_FLOPS.items():  # most specific keys first
        if key.lower() in device_kind.lower():
            return flops
    return None


def _peak_memory(device, compiled) -> tuple[int, str]:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device counter"
    analysis = compiled.memory_analysis()
    peak = (
        analysis.temp_size_in_bytes
        + analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        - analysis.alias_size_in_bytes
    )
    return int(peak), "XLA memory analysis"


def train_step_row(
    name: str,
    *,
    batch: int,
    frames: int,
    size: int,
    dtype: str,
    steps: int,
    num_classes: int = 400,
    fast_compile: bool = False,
) -> dict:
    """One model's training-step figures on the first device."""
    device = jax.devices()[0]
    model = models.create(name, num_classes, dtype=dtype)
    tx, step = model_bench.sgd_train_step(model, num_classes)
    args = model_bench.train_step_inputs(model, tx, batch, frames, size, num_classes)
    start = time.perf_counter()
    options = (
        model_bench.FAST_COMPILE_OPTIONS
        if fast_compile and jax.default_backend() == "cpu"
        else None
    )
    compiled = jax.jit(step, donate_argnums=(0, 1, 2)).lower(*args).compile(options)
    compile_s = time.perf_counter() - start
    params, stats, opt_state, x, labels = args
    params, stats, opt_state, loss = compiled(params, stats, opt_state, x, labels)  # warm-up
    jax.block_until_ready(loss)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        params, stats, opt_state, loss = compiled(params, stats, opt_state, x, labels)
        jax.block_until_ready(loss)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    gmacs = cost.measure(name, frames, size, num_classes, 1, dtype).gmacs
    clips_per_s = batch / step_s
    achieved = 6 * gmacs * 1e9 * clips_per_s
    peak = peak_flops(device.device_kind)
    memory, memory_source = _peak_memory(device, compiled)
    return {
        "model": name,
        "batch": batch,
        "frames": frames,
        "size": size,
        "dtype": dtype,
        "compile_s": compile_s,
        "step_ms": step_s * 1e3,
        "clips_per_s": clips_per_s,
        "gmacs_per_clip": gmacs,
        "tflops": achieved / 1e12,
        "mfu": achieved / peak if peak else None,
        "peak_memory_bytes": memory,
        "memory_source": memory_source,
        "final_loss": float(loss),
    }


def pipeline_row(*, frames: int, size: int, seconds: float) -> dict:
    """Training frames/s of the real tf.data pipeline on every host core (wall time) over
    freshly written 256-short-side JPEG shards (video_s3d/data/bench.py's clips)."""
    from video_s3d.data import bench as data_bench  # noqa: PLC0415 -- TensorFlow: only here
    from video_s3d.data import pipeline  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as directory:
        name = data_bench.write_clips(directory, frames_per_video=max(96, frames * 2))
        batch = 4
        iterator = iter(
            pipeline.train_dataset(
                name,
                batch_size=batch,
                num_frames=frames,
                crop_size=size,
                seed=0,
                process_index=0,
                process_count=1,
                shuffle_buffer=8,
            )
        )
        next(iterator)
        clips, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            next(iterator)
            clips += batch
        elapsed = time.perf_counter() - start
    cores = os.cpu_count()
    return {
        "host_cores": cores,
        "frames": frames,
        "size": size,
        "frames_per_s": clips * frames / elapsed,
        "clips_per_s": clips / elapsed,
        "frames_per_s_per_core": clips * frames / elapsed / cores,
    }


def format_table(rows: Sequence[dict], device_kind: str) -> str:
    peak = peak_flops(device_kind)
    peak_text = f"{peak / 1e12:.0f} TFLOP/s bf16 dense" if peak else "unknown peak: no MFU"
    lines = [
        f"Device: {device_kind} ({peak_text})",
        f"{'model':<10} {'clip':<12} {'dtype':<9} {'batch':>5} {'step ms':>9} "
        f"{'clips/s':>8} {'TFLOP/s':>8} {'MFU':>6} {'peak mem GiB':>12}",
    ]
    for r in rows:
        mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else "   n/a"
        lines.append(
            f"{r['model']:<10} {r['frames']}x{r['size']}^2{'':<{12 - len(str(r['frames'])) - len(str(r['size'])) - 3}} "
            f"{r['dtype']:<9} {r['batch']:>5} {r['step_ms']:9.1f} {r['clips_per_s']:8.2f} "
            f"{r['tflops']:8.2f} {mfu:>6} {r['peak_memory_bytes'] / 2**30:12.2f}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.accel_check", __doc__.split("\n")[0])
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="CPU smoke run: tiny models at 8x32^2, batch 2, float32, fast compiles",
    )
    parser.add_argument("--models", help="comma-separated (default i3d,s3d,s3dg)")
    parser.add_argument("--batch_size", type=int, default=8, help="clips per step (one device)")
    parser.add_argument("--num_frames", type=int, default=64)
    parser.add_argument("--crop_size", type=int, default=224)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pipeline_seconds", type=float, default=20.0)
    parser.add_argument(
        "--budget_s",
        type=float,
        default=420.0,
        help="start no further model after this many seconds",
    )
    parser.add_argument("--out", default="accel_check.json", help="where to write the figures")
    arguments.alias(parser, "--json", "--out")
    arguments.alias(parser, "--frames", "--num_frames")
    arguments.alias(parser, "--size", "--crop_size")
    arguments.alias(parser, "--batch", "--batch_size")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch_size, args.num_frames, args.crop_size, args.dtype = 2, 8, 32, "float32"
        args.steps, args.pipeline_seconds = min(args.steps, 2), min(args.pipeline_seconds, 3.0)
    args.models = (
        args.models.split(",") if args.models else list(TINY_MODELS if args.tiny else FULL_MODELS)
    )
    for name in args.models:
        try:
            models.get_spec(name)
        except UserError as error:
            parser.error(str(error))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runtime.hide_accelerators_from_tf()  # tf.data must leave the accelerator's memory to JAX
    started = time.perf_counter()
    device_kind = jax.devices()[0].device_kind
    print(
        f"{device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
        f"{os.cpu_count()} host cores",
        flush=True,
    )
    rows, skipped = [], []
    for i, name in enumerate(args.models):
        if time.perf_counter() - started > args.budget_s:
            skipped.append(name)
            continue
        rows.append(
            train_step_row(
                name,
                batch=args.batch_size,
                frames=args.num_frames,
                size=args.crop_size,
                dtype=args.dtype,
                steps=args.steps,
                fast_compile=args.tiny,
            )
        )
        print(
            f"[{i + 1}/{len(args.models)}] {name}: {rows[-1]['step_ms']:.1f} ms/step, "
            f"{time.perf_counter() - started:.0f} s elapsed",
            file=sys.stderr,
            flush=True,
        )
    pipeline = pipeline_row(
        frames=args.num_frames, size=args.crop_size, seconds=args.pipeline_seconds
    )
    print(format_table(rows, device_kind))
    if skipped:
        print(f"Skipped (over --budget_s={args.budget_s:.0f}): {', '.join(skipped)}")
    print(
        f"Input pipeline, {pipeline['host_cores']} host cores: "
        f"{pipeline['frames_per_s']:.0f} frames/s ({pipeline['clips_per_s']:.1f} clips of "
        f"{args.num_frames}x{args.crop_size}^2/s, {pipeline['frames_per_s_per_core']:.0f} per core)"
    )
    for r in rows:
        need = r["clips_per_s"] * args.num_frames / pipeline["frames_per_s_per_core"]
        print(f"  {r['model']}: {need:.1f} host cores of this kind to feed one device")
    report = {
        "device_kind": device_kind,
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "peak_bf16_flops": peak_flops(device_kind),
        "models": rows,
        "skipped": skipped,
        "pipeline": pipeline,
        "elapsed_s": time.perf_counter() - started,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"Wrote {args.out} ({report['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
