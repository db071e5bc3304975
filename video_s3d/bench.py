r"""Every performance figure of issue 20 in one run, as side-by-side ratios.

  python -m video_s3d.bench                                   # all sections
  python -m video_s3d.bench --torch_python=/work/torchvenv/bin/python   # + PyTorch's S3D
  python -m video_s3d.bench --sections=quickstart,all_reduce  # a few minutes on 2 cores

Sections:
  quickstart  tiny S3D-G / I2D at `make run`'s shapes (32x5x48^2): training step (forward,
              backward, SGD update) with the old CPU lowering ('unrolled', XLA's conv
              gradients) and today's default ('auto': the hand-written conv VJP where it
              measured faster), alternating rounds.
  torch       s3d_torchvision at --torch_shape (default 2x16x224^2) against torchvision's S3D
              (video_s3d/bench_torch.py in --torch_python's interpreter, --threads threads),
              alternating rounds; each side under each allocator setting (glibc's defaults,
              ours from video_s3d/allocator.py; PyTorch also with the MALLOC_* variables
              its users set), best against best. Without --torch_python only ours is timed.
  all_reduce  all-reduces in the compiled data-parallel train step on --cpu_devices devices.
  memory      per-clip training memory with and without per-block remat at --memory_shape
              (64x224^2), from XLA's memory analysis; compiled, never run.
  pipeline    runs `python -m video_s3d.data.bench` (input pipeline frames/s per core).
The accelerator figures (step time, MFU, peak memory on a GPU/TPU) come from
`python -m video_s3d.accel_check` (launch/accelerator_check.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from video_s3d import arguments

SECTIONS = ("quickstart", "torch", "all_reduce", "memory", "pipeline")


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.bench", __doc__.split("\n")[0])
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    parser.add_argument("--quickstart_models", default="tiny_s3dg,tiny_i2d")
    parser.add_argument("--torch_python", help="python with torch + torchvision (a separate venv)")
    parser.add_argument(
        "--torch_shape", default="2x16x224", help="batch x frames x size for the PyTorch comparison"
    )
    parser.add_argument(
        "--torch_lowerings",
        default="auto,unrolled,unrolled_vjp",
        help="our CPU lowerings to time against PyTorch (the first, the CPU default, is ours)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch threads; XLA:CPU uses every core of the machine",
    )
    parser.add_argument("--memory_models", default="s3dg")
    parser.add_argument("--memory_shape", default="64x224", help="frames x size")
    parser.add_argument("--memory_dtype", default="bfloat16")
    parser.add_argument(
        "--memory_lowering",
        default="unrolled",
        help="'native' (the accelerator program; very slow to compile on "
        "XLA:CPU) or 'unrolled' (the CPU program)",
    )
    parser.add_argument(
        "--cpu_devices", type=int, default=8, help="simulated CPU devices for the all-reduce count"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
    parser.add_argument("--out", help="also write every figure to this JSON file")
    arguments.alias(parser, "--json", "--out")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    if args.torch_python and not os.path.exists(args.torch_python):
        parser.error(
            f"--torch_python={args.torch_python} does not exist; create a venv with "
            "torch and torchvision and pass its python"
        )
    return args


def _shape(text: str, count: int) -> list[int]:
    return [int(v) for v in text.split("x")][:count]


def _all_reduces_in_child(cpu_devices: int) -> dict:
    """The all_reduce section in its own interpreter, the only one with simulated devices."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "all_reduce.json")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "video_s3d.bench",
                "--sections=all_reduce",
                f"--cpu_devices={cpu_devices}",
                f"--out={out}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(out) as f:
            return json.load(f)["all_reduce"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # The all-reduce count needs simulated devices, which slow every timed section (8 made the
    # full-size training step 7% slower, 2765 vs 2570 ms, session 16; every PyTorch comparison
    # before then ran under them). Alone, it runs here; beside other sections, in a child.
    all_reduce_here = args.sections == ["all_reduce"]
    if all_reduce_here:
        # Before JAX starts: simulated devices for the data-parallel HLO (a no-op off CPU).
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={args.cpu_devices}"
        )
    import jax  # noqa: PLC0415 -- after XLA_FLAGS

    from video_s3d import bench_figures as figures  # noqa: PLC0415

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    print(
        f"Device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{os.cpu_count()} CPU cores",
        flush=True,
    )
    report = {}
    if "quickstart" in args.sections:
        rows = [
            figures.lowering_speedup(
                name,
                **figures.QUICKSTART_SHAPE,
                rounds=args.rounds,
                steps=args.steps,
                progress=progress,
            )
            for name in args.quickstart_models.split(",")
        ]
        report["quickstart"] = rows
        print("\n`make run` shapes: training step, old CPU lowering vs new (same run)")
        print(f"{'model':<12} {'shape':<12} {'old ms':>8} {'new ms':>8} {'speed-up':>9}")
        for r in rows:
            print(
                f"{r['model']:<12} {r['shape']:<12} {r['old_ms']:8.0f} {r['new_ms']:8.0f} "
                f"{r['speedup']:8.2f}x"
            )
    if "torch" in args.sections:
        batch, frames, size = _shape(args.torch_shape, 3)
        row = figures.versus_torch(
            args.torch_python,
            batch,
            frames,
            size,
            args.threads,
            args.rounds,
            args.steps,
            progress,
            tuple(args.torch_lowerings.split(",")),
        )
        report["torch"] = row
        print(
            f"\ns3d_torchvision {row['shape']} training step (fwd+bwd+SGD), "
            f"torch threads {row['threads']}; medians of alternating rounds"
        )
        for program, ms in row["jax_ms_by_program"].items():
            print(f"  jax {program:<34} {ms:8.0f} ms")
        if row["torch_ms"] is None:
            print("  PyTorch not measured (no --torch_python)")
        else:
            for allocator_name, ms in row["torch_ms_by_allocator"].items():
                print(f"  torch {row['torch_version']}, {allocator_name:<22} {ms:8.0f} ms")
            print(
                f"  ours at its best ({row['jax_best']}) against PyTorch at its best "
                f"({row['torch_best']}): {row['speed_vs_torch']:.2f}x PyTorch's speed"
            )
    if "all_reduce" in args.sections:
        row = (
            figures.gradient_all_reduces()
            if all_reduce_here
            else _all_reduces_in_child(args.cpu_devices)
        )
        report["all_reduce"] = row
        print(
            f"\nData-parallel step of {row['model']} on {row['devices']} devices (sync BN "
            f"{row['sync_batch_norm']}): {row['all_reduces']} all-reduces in the compiled HLO, "
            f"{row['gradient_all_reduces']} carrying the gradients"
        )
    if "memory" in args.sections:
        frames, size = _shape(args.memory_shape, 2)
        rows = []
        for name in args.memory_models.split(","):
            progress(f"  memory analysis of {name} (compile only, twice)")
            rows.append(
                figures.remat_memory(name, frames, size, args.memory_dtype, args.memory_lowering)
            )
        report["memory"] = rows
        print(
            f"\nTraining memory per clip, XLA memory analysis ({args.memory_lowering} "
            f"lowering, {args.memory_dtype})"
        )
        print(
            f"{'model':<8} {'shape':<14} {'temp MiB':>9} {'remat MiB':>10} "
            f"{'peak MiB':>9} {'remat peak':>10} {'clips/memory':>12}"
        )
        for r in rows:
            print(
                f"{r['model']:<8} {r['shape']:<14} {r['temp'] / 2**20:9.0f} "
                f"{r['remat_temp'] / 2**20:10.0f} {r['peak'] / 2**20:9.0f} "
                f"{r['remat_peak'] / 2**20:10.0f} {r['batch_ratio']:11.2f}x"
            )
    if "pipeline" in args.sections:
        print("\nInput pipeline (python -m video_s3d.data.bench):", flush=True)
        code = subprocess.call([sys.executable, "-m", "video_s3d.data.bench"])
        report["pipeline_exit_code"] = code
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
