r"""The paper's findings, reproduced in miniature on the synthetic dataset, end to end on a CPU.

  python -m experiments.paper_study                       # `make table`: ~45 min on 2 CPU cores
  python -m experiments.paper_study --steps=40 --workdir=/tmp/study --out=/tmp/study_out
  python -m experiments.paper_study --dry_run             # the runs it would start

Trains tiny I2D, I3D, S3D, S3D-G and tiny bottom-/top-heavy I3D networks (cut points
HEAVY_CUTS; I2D and I3D close both curves) on both synthetic tasks (`motion`: the class is
the direction of time, in reversal pairs; `appearance`: the class is the object's look), one
after another (finished runs are skipped when started again), then writes the speed-accuracy
table and plots (experiments/speed_accuracy.py) and `findings.md`: each of the paper's claims
below with the numbers that support or refute it, computed from the runs:

  1. I2D, blind to frame order, is at chance between reversal partners on `motion` but
     learns `appearance`.
  2. 3D models collapse on time-reversed `motion` clips (they predict the partner class) but
     not on `appearance`.
  3. At equal cost, top-heavy beats bottom-heavy.
  4. S3D matches or beats I3D at a lower cost.
  5. Gating (S3D-G) helps.

A claim the numbers do not support is reported as not reproduced; one whose runs did not
learn enough to judge is reported as inconclusive. Tiny networks trained for minutes are
noisy: each comparison states its binomial standard error (sigma) over the evaluation videos.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from typing import Callable, Sequence

from experiments import runs as runs_lib
from experiments import speed_accuracy
from video_s3d.config_cli import parse_arg
from video_s3d import train_state
from video_s3d.models import zoo

CONFIG = "experiments/synthetic_motion.py"
TASKS = ("motion", "appearance")
BASE_MODELS = ("i2d", "i3d", "s3d", "s3dg")
HEAVY_FAMILY = "i3d"
HEAVY_CUTS = (3, 6)
THREE_D_MODELS = ("i3d", "s3d", "s3dg")
DISPLAY_NAMES = {"i2d": "I2D", "i3d": "I3D", "s3d": "S3D", "s3dg": "S3D-G"}
# 2000 steps of 16 clips: at the 200 steps of the first full run (dataset 1.1.0, 32x32 crops)
# every model stayed at <= 17% top-1 on `appearance` and S3D-G at 29% on `motion`, too little
# to judge any claim; at 1000 steps (dataset 1.2.0) motion was learned (S3D 89%) but I3D was
# still at 58% and every model at 18-40% on `appearance`; tiny S3D was still climbing on
# `appearance` 1.3.0 at step 1000 (45% at 750, 51% at 1000).
DEFAULT_STEPS = 2000
FINDINGS_FILE = "findings.md"
# Settings of every study run on top of experiments/synthetic_motion.py: clips small enough
# for a CPU, and AdamW: in a 200-step probe tiny_i3d's training accuracy on `motion` rose to
# 36% with it, while SGD at lr 0.1 stayed at chance.
RUN_SETTINGS = {
    # 5 frames 7 apart span the whole 32-frame motion, and T = 5 (mod 8) makes I2D's strided
    # pools mirror-symmetric, so I2D is exactly blind to frame order (experiments/quickstart.py):
    # at 8 frames tiny I2D told 86% of reversal pairs apart from that asymmetry alone.
    "data.num_frames": 5,
    "data.stride": 7,
    # 48x48: at 32x32 the appearance task's textures fall to 2-4 pixels a cycle.
    "data.crop_size": 48,
    "batch_size": 16,
    "eval_batch_size": 32,
    "optim.name": "adamw",
    "optim.learning_rate": 0.003,
    "optim.weight_decay": 1e-4,
    "eval_every_steps": 0,             # evaluate once, at the end
}


# --------------------------------------------------------------------------- the sweep
def study_models() -> list[str]:
    heavy = [f"{d}_heavy_{HEAVY_FAMILY}_{k}" for d in ("bottom", "top") for k in HEAVY_CUTS]
    return [zoo.TINY_PREFIX + m for m in (*BASE_MODELS, *heavy)]


def get_sweep(arg: str | None = None) -> list[runs_lib.Run]:
    """Every model on both tasks. Argument string: steps=<training steps per run>, seeds=<N>,
    data_dir=<TFDS folder for the generated datasets> (default: TFDS's own)."""
    arg = parse_arg(arg, steps=DEFAULT_STEPS, seeds=1, data_dir="")
    if arg.steps < 1:
        raise ValueError(f"steps={arg.steps} must be at least 1.")
    overrides = {
        **RUN_SETTINGS,
        "num_train_steps": arg.steps,
        "optim.warmup_steps": arg.steps // 10,
        "log_every_steps": max(arg.steps // 5, 1),
        "checkpoint_every_steps": arg.steps,
        "cpu_fast_compile": train_state.fast_compile_pays_off(arg.steps),
        **({"data.data_dir": arg.data_dir} if arg.data_dir else {}),
    }
    return runs_lib.grid(CONFIG, models=study_models(), datasets=TASKS, dataset_key="config",
                         seeds=range(arg.seeds), overrides=[overrides])


# --------------------------------------------------------------------------- findings
@dataclasses.dataclass(frozen=True)
class Finding:
    claim: str
    verdict: str    # one of VERDICTS
    evidence: str


REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, MISSING = (
    "reproduced", "not reproduced", "inconclusive", "missing runs")
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, MISSING)


@dataclasses.dataclass(frozen=True)
class Score:
    """One model on one task, averaged over its seeds."""
    top1: float
    reversed_top1: float | None
    pairwise_reversal: float | None
    gmacs: float
    num_videos: int          # evaluation videos, summed over seeds
    num_classes: int

    @property
    def chance(self) -> float:
        return 1.0 / self.num_classes

    def sigma(self, p: float | None = None) -> float:
        """Binomial standard error of an accuracy p (default: this top-1) over the videos."""
        p = self.top1 if p is None else p
        return math.sqrt(max(p * (1 - p), 1e-12) / max(self.num_videos, 1))

    def learned(self) -> bool:
        """Top-1 at least 3 sigma above chance: enough learning for its failures to mean something."""
        return self.top1 >= self.chance + 3 * self.sigma(self.chance)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def scores(rows: Sequence[speed_accuracy.RunRow]) -> dict[tuple[str, str], Score]:
    """(model without 'tiny_', task) -> Score. The task is the part of the dataset name after
    'synthetic_motion/'."""
    grouped: dict[tuple[str, str], list] = {}
    for row in rows:
        if speed_accuracy.accuracy(row) is None:
            continue
        model = row.model[len(zoo.TINY_PREFIX):] if row.model.startswith(zoo.TINY_PREFIX) else row.model
        task = row.dataset.split("/")[-1].removesuffix("_tiny")
        grouped.setdefault((model, task), []).append(row)
    return {key: Score(top1=_mean([speed_accuracy.accuracy(r) for r in rs]),
                       reversed_top1=_mean([r.reversed_video_top1 for r in rs]),
                       pairwise_reversal=_mean([r.pairwise_reversal for r in rs]),
                       gmacs=_mean([r.gmacs for r in rs]) or 0.0,
                       num_videos=sum(r.num_videos or 0 for r in rs),
                       num_classes=rs[0].num_classes)
            for key, rs in grouped.items()}


def _verdict(judged: Sequence[bool]) -> str:
    """All judged comparisons hold: reproduced; none could be judged: inconclusive."""
    if not judged:
        return INCONCLUSIVE
    return REPRODUCED if all(judged) else NOT_REPRODUCED


NOT_JUDGED = " (neither learned the task: not judged)"


def _pct(p: float | None) -> str:
    return "—" if p is None else f"{100 * p:.1f}%"


def _missing(claim: str, needed: Sequence[tuple[str, str]], have) -> Finding | None:
    absent = [f"{m} on {t}" for m, t in needed if (m, t) not in have]
    if absent:
        return Finding(claim, MISSING, "no finished run of " + ", ".join(absent))
    return None


def i2d_is_order_blind(s: dict[tuple[str, str], Score]) -> Finding:
    claim = "I2D is at chance between reversal partners on motion but learns appearance"
    missing = _missing(claim, [("i2d", "motion"), ("i2d", "appearance")], s)
    if missing:
        return missing
    motion, appearance = s["i2d", "motion"], s["i2d", "appearance"]
    if motion.pairwise_reversal is None:
        return Finding(claim, MISSING, "the motion run reports no pairwise reversal accuracy")
    pair_sigma = motion.sigma(0.5)
    at_chance = abs(motion.pairwise_reversal - 0.5) <= 2 * pair_sigma
    learns = appearance.learned()
    others_learn = any(s[m, "appearance"].learned() for m in THREE_D_MODELS if (m, "appearance") in s)
    evidence = (f"I2D picks the right one of two reversal partners in "
                f"{_pct(motion.pairwise_reversal)} of motion videos (chance 50%, 2 sigma = "
                f"{200 * pair_sigma:.1f} points); appearance top-1 {_pct(appearance.top1)} "
                f"(chance {_pct(appearance.chance)})")
    if ("i3d", "motion") in s and s["i3d", "motion"].pairwise_reversal is not None:
        evidence += f"; for contrast, I3D's pairwise reversal accuracy is {_pct(s['i3d', 'motion'].pairwise_reversal)}"
    if not learns and not others_learn:
        return Finding(claim, INCONCLUSIVE, evidence + "; no model learned appearance")
    return Finding(claim, REPRODUCED if at_chance and learns else NOT_REPRODUCED, evidence)


def three_d_needs_time(s: dict[tuple[str, str], Score]) -> Finding:
    claim = "3D models collapse on time-reversed motion clips but not on appearance clips"
    present = [m for m in THREE_D_MODELS if (m, "motion") in s and (m, "appearance") in s]
    if not present:
        return _missing(claim, [(m, t) for m in THREE_D_MODELS for t in TASKS], s)
    judged, parts = [], []
    for model in present:
        motion, appearance = s[model, "motion"], s[model, "appearance"]
        if motion.reversed_top1 is None or appearance.reversed_top1 is None:
            return Finding(claim, MISSING, f"{model} was evaluated without time reversal")
        # Collapse: reversal costs at least half the accuracy; kept: it costs at most a fifth.
        collapses = motion.reversed_top1 <= 0.5 * motion.top1
        keeps = appearance.reversed_top1 >= 0.8 * appearance.top1
        parts.append(f"{DISPLAY_NAMES[model]} motion {_pct(motion.top1)} -> {_pct(motion.reversed_top1)} "
                     f"reversed, appearance {_pct(appearance.top1)} -> {_pct(appearance.reversed_top1)}")
        if motion.learned() and appearance.learned():
            judged.append(collapses and keeps)
        else:
            parts[-1] += " (did not learn both tasks: not judged)"
    evidence = "; ".join(parts) + " (collapse: reversed at most half of forward; kept: at least 80%)"
    return Finding(claim, _verdict(judged), evidence)


def _interpolate(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """Piecewise-linear accuracy at cost x along points sorted by cost (None outside them)."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def top_heavy_beats_bottom_heavy(rows: Sequence[speed_accuracy.RunRow]) -> Finding:
    claim = "At equal cost, top-heavy beats bottom-heavy"
    comparisons, parts = [], []
    # Learning floor per dataset: chance + 3 sigma (as Score.learned).
    floors = {}
    for row in rows:
        chance = 1.0 / row.num_classes
        floors[row.dataset] = chance + 3 * math.sqrt(chance * (1 - chance) / max(row.num_videos or 1, 1))
    for (dataset, family), sweep in sorted(speed_accuracy.heavy_sweeps(rows).items()):
        curves = {}
        for direction in ("bottom", "top"):
            points = sorted(
                (sum(r.gmacs for r in rs) / len(rs), sum(speed_accuracy.accuracy(r) for r in rs) / len(rs), p.cut)
                for p, rs in sweep.items() if p.direction == direction)
            curves[direction] = points
        top_curve = [(c, a) for c, a, _ in curves["top"]]
        for cost, acc, cut in curves["bottom"]:
            if cut in (0, zoo.SWEEP_CUTS[-1]):
                continue  # the ends are the same network on both curves
            top_acc = _interpolate(top_curve, cost)
            if top_acc is None:
                continue
            parts.append(f"{dataset.split('/')[-1]} at {cost:.4f} GMACs: bottom-heavy-{cut} "
                         f"{_pct(acc)} vs top-heavy {_pct(top_acc)}")
            if max(acc, top_acc) < floors[dataset]:
                parts[-1] += NOT_JUDGED
                continue
            comparisons.append(top_acc >= acc)
    if not parts:
        return Finding(claim, MISSING, "no bottom-/top-heavy sweep with runs on both sides of a cut")
    if not comparisons:
        return Finding(claim, INCONCLUSIVE, "; ".join(parts))
    wins = sum(comparisons)
    evidence = (f"top-heavy (interpolated along its cost curve) is at least as accurate in "
                f"{wins} of {len(comparisons)} comparisons: " + "; ".join(parts))
    return Finding(claim, REPRODUCED if wins * 2 > len(comparisons) else NOT_REPRODUCED, evidence)


def _difference_sigma(a: Score, b: Score) -> float:
    return math.sqrt(a.sigma() ** 2 + b.sigma() ** 2)


def s3d_beats_i3d(s: dict[tuple[str, str], Score]) -> Finding:
    claim = "S3D matches or beats I3D at a lower cost"
    missing = _missing(claim, [(m, t) for m in ("i3d", "s3d") for t in TASKS], s)
    if missing:
        return missing
    holds, parts = [], []
    for task in TASKS:
        i3d, s3d = s["i3d", task], s["s3d", task]
        sigma = _difference_sigma(i3d, s3d)
        parts.append(f"{task}: S3D {_pct(s3d.top1)} at {s3d.gmacs:.4f} GMACs vs I3D "
                     f"{_pct(i3d.top1)} at {i3d.gmacs:.4f} (2 sigma of the difference "
                     f"{200 * sigma:.1f} points)")
        if not (i3d.learned() or s3d.learned()):
            parts[-1] += NOT_JUDGED
            continue
        holds.append(s3d.gmacs < i3d.gmacs and s3d.top1 >= i3d.top1 - 2 * sigma)
    return Finding(claim, _verdict(holds), "; ".join(parts))


def gating_helps(s: dict[tuple[str, str], Score]) -> Finding:
    claim = "Gating helps: S3D-G is more accurate than S3D"
    missing = _missing(claim, [(m, t) for m in ("s3d", "s3dg") for t in TASKS], s)
    if missing:
        return missing
    holds, parts = [], []
    for task in TASKS:
        s3d, s3dg = s["s3d", task], s["s3dg", task]
        difference, sigma = s3dg.top1 - s3d.top1, _difference_sigma(s3d, s3dg)
        parts.append(f"{task}: S3D-G {_pct(s3dg.top1)} vs S3D {_pct(s3d.top1)} "
                     f"({100 * difference:+.1f} points{', within 2 sigma' if abs(difference) < 2 * sigma else ''}), "
                     f"cost x{s3dg.gmacs / s3d.gmacs:.3f}")
        if not (s3d.learned() or s3dg.learned()):
            parts[-1] += NOT_JUDGED
            continue
        holds.append(difference > 0)
    return Finding(claim, _verdict(holds), "; ".join(parts))


def findings(rows: Sequence[speed_accuracy.RunRow]) -> list[Finding]:
    s = scores(rows)
    return [i2d_is_order_blind(s), three_d_needs_time(s), top_heavy_beats_bottom_heavy(rows),
            s3d_beats_i3d(s), gating_helps(s)]


def findings_markdown(found: Sequence[Finding], num_runs: int,
                      warnings: Sequence[str] = ()) -> str:
    lines = [f"# Paper findings on synthetic_motion ({num_runs} runs)", ""]
    lines += [line for w in warnings for line in (f"**Warning:** {w}", "")]
    lines += ["| # | claim | verdict | evidence |", "|---|---|---|---|"]
    for i, f in enumerate(found, 1):
        lines.append(f"| {i} | {f.claim} | **{f.verdict}** | {f.evidence} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- entry point
def run_study(workdir: str, out_dir: str, sweep_arg: str | None = None, dry_run: bool = False,
              log: Callable[[str], None] = print) -> list[Finding]:
    from launch import sweep as sweep_launcher  # the local runner; launchers import experiments
    runs, root = get_sweep(sweep_arg), os.path.abspath(workdir)
    log(f"paper study: {len(runs)} runs into {root}")
    # Both tasks train the same networks on same-shaped clips: with a persistent compilation
    # cache the second task's runs reuse the first's compiled programs.
    cache = {"JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR")
             or os.path.join(root, "xla_cache")}
    sweep_launcher.run_locally(runs, root, dry_run=dry_run, env=cache, log=log)
    if dry_run:
        return []
    rows = speed_accuracy.write_report([run.workdir(root) for run in runs], out_dir, log=log)
    found = findings(rows)
    text = findings_markdown(found, len(rows), speed_accuracy.mixed_versions(rows))
    with open(os.path.join(out_dir, FINDINGS_FILE), "w", encoding="utf-8") as f:
        f.write(text)
    log(text)
    log(f"wrote {os.path.join(out_dir, FINDINGS_FILE)}")
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.paper_study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="runs/paper_study", help="one workdir per run below it")
    parser.add_argument("--out", default="out/paper_study", help="table, plots and findings.md")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps per run")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--data_dir", default="", help="TFDS folder for the generated datasets")
    parser.add_argument("--dry_run", action="store_true", help="print the runs' commands only")
    args = parser.parse_args(argv)
    run_study(args.workdir, args.out, f"steps={args.steps},seeds={args.seeds},data_dir={args.data_dir}",
              dry_run=args.dry_run)


if __name__ == "__main__":
    main(sys.argv[1:])
