r"""Which input frames can reach each layer of a study model: where its time modelling can happen.

  python -m experiments.temporal_reach                      # every study model, study clips
  python -m experiments.temporal_reach --models=tiny_i3d,tiny_top_heavy_i3d_3 --num_frames=29

A frame *reaches* an endpoint when replacing that frame alone changes the endpoint's middle
time step (anywhere in space). Max-pools pass only their winners' gradients, so a gradient's
support would undercount; replacing a frame with fresh values changes some winner whenever
the frame can win at all. Kernels are He-initialised with every tap random: the study's
`he_centre` start has zero off-centre taps, and the question is what trained weights can use,
not what the initial ones do. Printed per model: how many input frames reach each endpoint,
and the first endpoint that every frame the network keeps reaches.

Why it matters for claim 3: a relation between two events in time ("A flashes, then B") can
be computed by a 3D layer whose reach spans both events. If a bottom-heavy network's 3D layers
already reach the whole clip, it needs no 3D layer on top, and a task on such clips cannot
separate where the 3D layers sit once both are trained to convergence.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from video_s3d import arguments

# A change smaller than this fraction of the endpoint's largest value is rounding, not reach
# (not published; our choice).
CHANGE_TOLERANCE = 1e-4
ENDPOINTS = ("Conv_1a", "Conv_2c", "Mixed_3b", "Mixed_3c", "Mixed_4b", "Mixed_4f", "Mixed_5c")


def reach(
    model: str,
    num_frames: int,
    crop_size: int,
    endpoints: Sequence[str] = ENDPOINTS,
) -> dict[str, tuple[int, ...]]:
    """For each endpoint, the input frames whose replacement changes its middle time step.

    One forward pass of a batch: the clip, then the clip with frame k replaced, for every k
    (eval mode, so BatchNorm uses its fixed statistics and the batch entries do not mix)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from video_s3d import models

    network = models.create(model, 10, kernel_init="he")
    clip = jax.random.normal(jax.random.key(0), (1, num_frames, crop_size, crop_size, 3))
    other = jax.random.normal(jax.random.key(1), clip.shape)
    replaced = [clip.at[:, k].set(other[:, k]) for k in range(num_frames)]
    batch = jnp.concatenate([clip, *replaced])
    variables = network.init(
        {"params": jax.random.key(2), "dropout": jax.random.key(3)}, clip, train=False
    )

    @jax.jit
    def middles(batch):
        out = network.apply(variables, batch, train=False, return_endpoints=True)[1]
        return {e: out[e][:, out[e].shape[1] // 2] for e in endpoints}

    result = {}
    for endpoint, middle in middles(batch).items():
        middle = np.asarray(middle)
        difference = np.abs(middle[1:] - middle[:1]).reshape(num_frames, -1).max(axis=1)
        # Not `> 0`: batch entries may be computed by differently vectorised code, which
        # rounds differently; a frame in reach changes the map by its own magnitude.
        changed = difference > CHANGE_TOLERANCE * np.abs(middle[0]).max()
        result[endpoint] = tuple(int(k) for k in np.nonzero(changed)[0])
    return result


def first_full_reach(reaches: dict[str, tuple[int, ...]]) -> str | None:
    """The first endpoint reached by every frame that reaches the last one (the frames the
    network keeps: a 2D stem with temporal stride 2 drops every other frame for good)."""
    kept = set(reaches[list(reaches)[-1]])
    return next((e for e, frames in reaches.items() if set(frames) == kept), None)


def markdown(models: Sequence[str], num_frames: int, crop_size: int) -> str:
    header = ["model", *ENDPOINTS, "whole reach from"]
    lines = [
        f"Input frames (of {num_frames}, at {crop_size}²) that reach the middle time step of "
        "each endpoint:",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for model in models:
        reaches = reach(model, num_frames, crop_size)
        cells = [str(len(reaches[e])) for e in ENDPOINTS]
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {first_full_reach(reaches)} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    from experiments import paper_study

    parser = arguments.parser("experiments.temporal_reach", __doc__)
    parser.add_argument(
        "--models",
        default=",".join(paper_study.study_models()),
        help="comma-separated model names (default: every study model)",
    )
    parser.add_argument(
        "--num_frames", type=int, default=paper_study.RUN_SETTINGS["data.num_frames"]
    )
    parser.add_argument("--crop_size", type=int, default=paper_study.RUN_SETTINGS["data.crop_size"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    sys.stdout.write(markdown(models, args.num_frames, args.crop_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
