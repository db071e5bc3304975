"""Runs a sweep: one job per run, one after another on this machine, or on a TPU pod / SLURM.

  # every run of the synthetic sweep, shrunk for a laptop, one after another:
  python -m launch.sweep --sweep=experiments/sweeps/synthetic.py:runlocal --workdir=runs/synthetic
  # print the commands only:
  python -m launch.sweep --sweep=experiments/sweeps/heavy.py --workdir=runs/heavy --dry_run
  # hand the sweep to a launcher (its own flags follow):
  python -m launch.sweep --launcher=tpu_pod --sweep=experiments/sweeps/kinetics400.py \
      --workdir=gs://BUCKET/runs/k400 --tpu=s3d-pod --zone=us-central2-b --accelerator_type=v4-64
  python -m launch.sweep --launcher=slurm --sweep=experiments/sweeps/kinetics400.py \
      --workdir=/scratch/runs/k400 --nodes=4 --gpus_per_node=8 --submit

Locally, a run whose workdir already holds `result.json` is skipped, so starting the same
sweep again continues where it stopped (an unfinished run resumes from its checkpoint).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Callable, Mapping, Sequence

from experiments import runs as runs_lib
from launch import jobs, local
from video_s3d.errors import UserError


def run_locally(
    runs: Sequence[runs_lib.Run],
    root: str,
    dry_run: bool = False,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Runs each job in turn with launch.local (output also in <workdir>/log.txt, SIGTERM
    passed on so the run checkpoints); returns the names of the runs it started.

    A fresh process per run keeps runs independent (device memory, flags). `env` adds
    environment variables for every run. Stops at the first failing run: a failure is
    almost always a bug that every later run would hit too, and the finished runs are kept.
    """
    root = root if root.startswith("gs://") else os.path.abspath(root)
    run_env = local.run_environment(base={**os.environ, **(env or {})})
    started, t_start = [], time.time()
    finished = [
        os.path.exists(os.path.join(run.workdir(root), runs_lib.RESULT_FILE)) for run in runs
    ]
    _refuse_finished_with_another_recipe(
        [run for run, done in zip(runs, finished) if done], root, dry_run, log
    )
    for i, run in enumerate(runs, 1):
        workdir, main_args = run.workdir(root), run.main_args(root)
        argv = [python, "-m", jobs.MAIN_MODULE, *main_args]
        if dry_run:
            log(shlex.join(argv))
            continue
        if finished[i - 1]:
            log(
                f"[{i}/{len(runs)}] {run.name}: finished before "
                f"({workdir}/{runs_lib.RESULT_FILE}), skipped"
            )
            continue
        log(f"[{i}/{len(runs)}] {run.name}: {shlex.join(argv)}")
        t_run = time.time()
        status = local.run(main_args, run_env, os.path.join(workdir, "log.txt"), python=python)
        if status != 0:
            raise RuntimeError(
                f"Run {run.name!r} failed (exit status {status}); its output is above "
                f"and its workdir is {workdir}. Fix it and start the sweep again: "
                "finished runs are skipped."
            )
        started.append(run.name)
        done_s = time.time() - t_start
        left = finished[i:].count(False)  # runs finished before are skipped: not in the ETA
        log(
            f"[{i}/{len(runs)}] {run.name}: done in {time.time() - t_run:.0f} s; "
            f"{left} left to train, about {done_s / len(started) * left / 60:.1f} min to go"
        )
    return started


def _refuse_finished_with_another_recipe(
    finished: Sequence[runs_lib.Run], root: str, dry_run: bool, log: Callable[[str], None]
) -> None:
    """A finished run is skipped, so one trained with other settings (an older recipe) would
    pass its numbers off as this sweep's: refuse before anything starts (a dry run only says so)."""
    if root.startswith("gs://"):
        return  # read remotely by the job itself; not checked here
    stale = [(run, run.recorded_differences(root)) for run in finished]
    stale = [(run, diff) for run, diff in stale if diff]
    if not stale:
        return
    first, diff = stale[0]
    message = (
        f"{len(stale)} finished run(s) under {root} were trained with other settings than this "
        f"sweep asks for (e.g. {first.name}: {'; '.join(diff[:3])}); move them away or pass "
        "another --workdir, so old results are not reported as new ones."
    )
    if dry_run:
        log("note: " + message)
        return
    raise UserError(message)


LAUNCHERS = ("local", "tpu_pod", "slurm")


def _launcher_chooser() -> argparse.ArgumentParser:
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--launcher", choices=LAUNCHERS, default="local")
    return chooser


def build_parser() -> argparse.ArgumentParser:
    """The local launcher's parser (--launcher=tpu_pod|slurm hands the rest to theirs)."""
    parser = argparse.ArgumentParser(
        prog="python -m launch.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_launcher_chooser()],
    )
    jobs.add_run_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen, rest = _launcher_chooser().parse_known_args(argv)
    if chosen.launcher == "tpu_pod":
        from launch import tpu_pod

        return tpu_pod.main(rest)
    if chosen.launcher == "slurm":
        from launch import slurm

        return slurm.main(rest)

    args = build_parser().parse_args(rest)
    runs, root = jobs.runs_from_args(args)
    try:
        run_locally(runs, root, dry_run=args.dry_run)
    except UserError as error:  # anything else is a bug and keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
