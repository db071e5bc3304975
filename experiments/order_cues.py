r"""Which cues a trained run uses to tell a clip of an ordered task from its time-reversed partner.

  python -m experiments.order_cues \
      --workdir=runs/paper_study/tiny_bottom_heavy_i3d_3-far_flash_order-s0

Renders fresh clips of the run's task (`far_flash_order`, `flash_order` or `order`; seeds
disjoint from the dataset's) at the dataset's clip length and frame size, of the first class of each
reversal pair, in variants that each remove one possible cue, and prints how often the run
orders a clip and its reversal correctly (its partner's logit below for the clip, above for
the reversal; a tie within TIE_TOLERANCE counts half):

  as drawn  the dataset's clips
  still     every object and the background held at their middle-frame state: each flash is
            then the same forwards and backwards, so no drift, of an object or of the
            background, can tell the order; only where the flashes lie relative to each other
  no bar    without the distractor bar

Why (session 22): tiny bottom-heavy I3D cut 3 scored 96.1% on `far_flash_order`, though no
feature of its 3D layers sees both flashes (synthetic_render.FAR_FLASH_REACH). Its 2D layers
above are the same whichever way a clip plays (zoo.py, "I2D and time reversal"), but what they
receive is not: a 3D feature beside a flash tells the flash's near side from its far side. The
2D layers' temporal max-pools carry those tags across the clip, so they can see that the first
shape's "after" side faces the second shape's "before" side. If the run still orders `still`
clips, no drift was its cue.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

import numpy as np

from video_s3d import arguments

# Logit differences smaller than this are ties: rounding, not a decision (not published; our
# choice).
TIE_TOLERANCE = 1e-5
CUE_SEED = 2_000_003  # distinct from the built dataset's seed 0 and study_probe's


def still(scene):
    """`scene` with every object and the background held at their middle-frame state (the
    opacities keep changing)."""
    from video_s3d.data.builders import synthetic_render

    middle = len(scene.offsets) // 2
    objects = []
    for look, states in scene.objects:
        held = states.copy()
        held[:, :4] = states[middle, :4]
        objects.append((look, held))
    offsets = np.repeat(scene.offsets[middle : middle + 1], len(scene.offsets), axis=0)
    return synthetic_render.Scene(scene.background, offsets, tuple(objects))


def without_bar(scene):
    from video_s3d.data.builders import synthetic_render

    bar = synthetic_render.SHAPES.index(synthetic_render.ORDER_DISTRACTOR)
    objects = tuple(o for o in scene.objects if o[0].shape != bar)
    return synthetic_render.Scene(scene.background, scene.offsets, objects)


VARIANTS = {"as drawn": lambda scene: scene, "still": still, "no bar": without_bar}


def ordered_correctly(logits: np.ndarray, reversed_logits: np.ndarray, label: int) -> float:
    """1 if the clip scores its class over its partner and the reversal the opposite, 0 if
    either is wrong, 0.5 if either is a tie."""
    partner = label ^ 1
    margins = (logits[label] - logits[partner], reversed_logits[partner] - reversed_logits[label])
    if min(abs(m) for m in margins) < TIE_TOLERANCE:
        return 0.5
    return float(all(m > 0 for m in margins))


def cue_table(
    logits_of: Callable[[np.ndarray], np.ndarray],
    task: str,
    num_clips: int,
    num_frames: int,
    size: int,
) -> dict[str, float]:
    """The share of clips ordered correctly, per variant; `logits_of` maps uint8 frames
    [T, size, size, 3] to logits."""
    from video_s3d.data.builders import synthetic_render

    make_scene = synthetic_render.SCENE_TASKS[task]
    num_pairs = len(synthetic_render.class_names(task)) // 2
    scores = {name: [] for name in VARIANTS}
    for i in range(num_clips):
        label = 2 * (i % num_pairs)
        scene = make_scene(label, np.random.default_rng((CUE_SEED, i)), num_frames, size)
        for name, variant in VARIANTS.items():
            clip = synthetic_render.render_scene(variant(scene), size)
            scores[name].append(ordered_correctly(logits_of(clip), logits_of(clip[::-1]), label))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("experiments.order_cues", __doc__)
    parser.add_argument("--workdir", required=True, help="a finished run of an ordered task")
    parser.add_argument("--fresh_clips", type=int, default=200, help="clips rendered per variant")
    parser.add_argument(
        "--synthetic_task",
        default="",
        help="render this task's clips (default: the run's dataset's task)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import video_s3d
    from video_s3d.data.builders import synthetic_motion, synthetic_render

    model = video_s3d.load(args.workdir)
    dataset = model.run.config.data.name
    task = args.synthetic_task or dataset.split("/")[-1].removesuffix("_tiny")
    if task not in synthetic_render.SCENE_TASKS:
        print(
            f"error: {args.workdir} trained on {dataset}; give a run of an ordered "
            f"synthetic_motion task, or --synthetic_task= one of "
            f"{sorted(synthetic_render.SCENE_TASKS)}.",
            file=sys.stderr,
        )
        return 2
    config = synthetic_motion.SyntheticMotion.builder_configs[task]
    table = cue_table(model.logits, task, args.fresh_clips, config.num_frames, config.image_size)
    print(f"{args.workdir}: {task} clips and their reversals ordered correctly")
    print("| clips | share |\n|---|---|")
    for name, share in table.items():
        print(f"| {name} | {100 * share:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
