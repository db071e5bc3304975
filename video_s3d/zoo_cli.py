"""The model zoo as a table: every name with its parameters and multiply-adds.

    python -m video_s3d.zoo_cli                     # base models and the heavy sweeps
    python -m video_s3d.zoo_cli --tiny --num_frames=16 --crop_size=112 --num_classes=10 --json

G-MACs are `video_s3d.cost.gmacs` (dense multiply-adds per clip counted from the spec, held
equal in the tests to the count of the program JAX lowers); parameters come from the model's
own initialisation, traced abstractly (nothing is computed). For activation memory and
XLA's count, use `python -m video_s3d.cost`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from video_s3d import arguments, cost


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.zoo_cli", __doc__.split("\n\n")[0])
    parser.add_argument("--num_frames", type=int, default=cost.PAPER_FRAMES, help="clip length T")
    parser.add_argument(
        "--crop_size", type=int, default=cost.PAPER_SIZE, help="frame height = width"
    )
    parser.add_argument("--num_classes", type=int, default=400)
    parser.add_argument("--tiny", action="store_true", help="also list the tiny_ twins")
    parser.add_argument("--json", action="store_true", help="one JSON object per model")
    arguments.alias(parser, "--frames", "--num_frames")
    arguments.alias(parser, "--size", "--crop_size")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.num_frames, args.crop_size, args.num_classes) < 1:
        parser.error("--num_frames, --crop_size and --num_classes must be positive.")
    return args


def count_params(name: str, num_classes: int) -> int:
    """Parameters of `models.create(name, num_classes)` (abstract init at the smallest input)."""
    import jax
    import jax.numpy as jnp

    from video_s3d import models

    model = models.create(name, num_classes)
    frames, pixels = models.minimum_input(models.get_spec(name))
    shapes = jax.eval_shape(
        lambda: model.init(
            {"params": jax.random.key(0), "dropout": jax.random.key(1)},
            jnp.zeros((1, frames, pixels, pixels, 3), jnp.float32),
            train=False,
        )
    )
    return int(sum(x.size for x in jax.tree.leaves(shapes["params"])))


def rows(frames: int, size: int, num_classes: int, include_tiny: bool) -> list[dict]:
    from video_s3d import models

    return [
        {
            "model": name,
            "params": count_params(name, num_classes),
            "gmacs": cost.gmacs(name, frames, size, num_classes),
        }
        for name in models.names(include_tiny=include_tiny)
    ]


def format_table(table: list[dict], frames: int, size: int, num_classes: int) -> str:
    width = max(len(row["model"]) for row in table)
    lines = [
        f"{len(table)} models; G-MACs per {frames}x{size}x{size} clip, {num_classes} classes",
        f"{'model':<{width}}  {'params':>11}  {'G-MACs':>9}",
    ]
    lines += [
        f"{row['model']:<{width}}  {row['params']:>11,}  {row['gmacs']:>9.3f}" for row in table
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from video_s3d import runtime

    runtime.quiet_library_notices()
    table = rows(args.num_frames, args.crop_size, args.num_classes, args.tiny)
    if args.json:
        for row in table:
            print(json.dumps(row))
    else:
        print(format_table(table, args.num_frames, args.crop_size, args.num_classes))
    return 0


def cli() -> None:
    """The console script `video-s3d-zoo` (pyproject.toml)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
