r"""Our side of the bench's PyTorch comparison in a fresh interpreter: s3d_torchvision's step.

The allocator settings (video_s3d/allocator.py) act only from a process's start, so the bench
times our step under the settings it did not start with in a child, e.g.
  GLIBC_TUNABLES= python -m video_s3d.bench_jax --num_frames=16 --crop_size=224 --batch_size=2
Prints one JSON object: the median milliseconds of a training step (forward, backward and an
SGD-with-momentum update) over --steps steps after one warm-up, with the user and kernel CPU
time and the minor page faults per step (what the allocator settings change).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence

import jax

from video_s3d import allocator, arguments
from video_s3d.bench_figures import compiled_sgd_step


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.bench_jax", __doc__.split("\n")[0])
    parser.add_argument("--num_frames", type=int, default=16)
    parser.add_argument("--crop_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--lowering", default="auto", help="CPU lowering (models/layers.py)")
    parser.add_argument("--model", default="s3d_torchvision")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    compiled, inputs = compiled_sgd_step(
        args.model, args.batch_size, args.num_frames, args.crop_size, args.lowering
    )
    jax.block_until_ready(compiled(*inputs))  # warm-up
    times, before = [], resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(args.steps):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*inputs))
        times.append((time.perf_counter() - start) * 1e3)
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "train_ms": statistics.median(times),
                # CPU time counts the work done, not the waiting: on a loaded machine it
                # varies less than the wall time.
                "user_s_per_step": (after.ru_utime - before.ru_utime) / args.steps,
                "kernel_s_per_step": (after.ru_stime - before.ru_stime) / args.steps,
                "minor_faults_per_step": (after.ru_minflt - before.ru_minflt) // args.steps,
                "tuned_allocator": allocator.is_tuned(os.environ),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
