r"""Runs a sweep: one job per run, one after another (or N at once) on this machine, or on a
TPU pod / SLURM.

  # every run of the synthetic sweep, shrunk for a laptop, one after another:
  python -m launch.sweep --sweep=experiments/sweeps/synthetic.py:runlocal --workdir=runs/synthetic
  # two runs at a time, each on half of the CPU cores (small models on a CPU host):
  python -m launch.sweep --sweep=experiments/sweeps/synthetic.py:runlocal --workdir=runs/synthetic \
      --parallel=2
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
import json
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
    parallel: int = 1,
) -> list[str]:
    """Runs each job with launch.local (output also in <workdir>/log.txt, SIGTERM passed on
    so the run checkpoints); returns the names of the runs it started.

    A fresh process per run keeps runs independent (device memory, flags). `env` adds
    environment variables for every run. `parallel` > 1 trains that many runs at once, each
    pinned to its own share of this process's CPU cores (their output goes to log.txt only):
    small CPU models use one core better than XLA spreads one over two (README, Benchmarks).
    Stops starting runs at the first failing one: a failure is almost always a bug that every
    later run would hit too, and the finished runs are kept.
    """
    root = root if root.startswith("gs://") else os.path.abspath(root)
    run_env = local.run_environment(base={**os.environ, **(env or {})})
    finished = [
        os.path.exists(os.path.join(run.workdir(root), runs_lib.RESULT_FILE)) for run in runs
    ]
    _refuse_finished_with_another_recipe(
        [run for run, done in zip(runs, finished) if done], root, dry_run, log
    )
    if dry_run:
        for run in runs:
            log(shlex.join([python, "-m", jobs.MAIN_MODULE, *run.main_args(root)]))
        return []
    for i, (run, done) in enumerate(zip(runs, finished), 1):
        if done:
            log(
                f"[{i}/{len(runs)}] {run.name}: finished before "
                f"({run.workdir(root)}/{runs_lib.RESULT_FILE}), skipped"
            )
    to_train = [(i, run) for i, (run, done) in enumerate(zip(runs, finished), 1) if not done]
    progress = _Progress(len(runs), len(to_train), parallel, log)
    if parallel > 1:
        return _run_concurrently(to_train, root, run_env, python, parallel, progress)
    for i, run in to_train:
        workdir, main_args = run.workdir(root), run.main_args(root)
        log(
            f"[{i}/{len(runs)}] {run.name}: {shlex.join([python, '-m', jobs.MAIN_MODULE, *main_args])}"
        )
        t_run = time.time()
        status = local.run(main_args, run_env, os.path.join(workdir, "log.txt"), python=python)
        if status != 0:
            raise _failed(run, status, workdir)
        if not _has_result(workdir):
            progress.stopped(i, run, time.time() - t_run, workdir, len(os.sched_getaffinity(0)))
            raise _stopped(run)
        progress.done(i, run, time.time() - t_run, workdir, len(os.sched_getaffinity(0)))
    return progress.started


def _has_result(workdir: str) -> bool:
    """Whether the run wrote its result. A run stopped by SIGTERM/SIGINT saves a checkpoint and
    exits with status 0 too, so the status alone does not say it finished. (A gs:// workdir is
    not read from here; its run counts as finished by its status.)"""
    if workdir.startswith("gs://"):
        return True
    return os.path.exists(os.path.join(workdir, runs_lib.RESULT_FILE))


class _Progress:
    """The '[i/N] name: done in X s; K left to train, about M min to go' lines (the mean run
    time so far, times the runs left, over the runs trained at once), each run's wall time in
    <workdir>/run_time.json (a study sums them), and a line for a run stopped before its end."""

    def __init__(self, total: int, to_train: int, parallel: int, log: Callable[[str], None]):
        self.total, self.left, self.parallel, self.log = total, to_train, parallel, log
        self.started: list[str] = []
        self.seconds: list[float] = []

    def done(self, i: int, run: runs_lib.Run, seconds: float, workdir: str, cores: int) -> None:
        self.started.append(run.name)
        self.seconds.append(seconds)
        _record_time(workdir, seconds, cores, finished=True)
        self.left -= 1
        to_go = sum(self.seconds) / len(self.seconds) * self.left / self.parallel
        self.log(
            f"[{i}/{self.total}] {run.name}: done in {seconds:.0f} s; {self.left} left to "
            f"train, about {to_go / 60:.1f} min to go"
        )

    def stopped(self, i: int, run: runs_lib.Run, seconds: float, workdir: str, cores: int) -> None:
        _record_time(workdir, seconds, cores, finished=False)
        self.log(
            f"[{i}/{self.total}] {run.name}: stopped before finishing; its checkpoint is kept "
            "and it resumes when the sweep starts again"
        )


def _record_time(workdir: str, seconds: float, cores: int, finished: bool) -> None:
    """<workdir>/run_time.json: the run's wall time over all its sittings (a stopped sitting
    is recorded as unfinished and added to the one that finishes it)."""
    path = os.path.join(workdir, runs_lib.RUN_TIME_FILE)
    earlier = 0.0
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            recorded = json.load(f)
        if recorded.get("finished") is False:
            earlier = recorded["wall_s"]
    record = {"wall_s": round(earlier + seconds, 1), "cpu_cores": cores}
    if not finished:
        record["finished"] = False
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f)


def _stopped(run: runs_lib.Run) -> RuntimeError:
    return RuntimeError(f"Run {run.name!r} stopped before finishing; finished runs are kept.")


def _failed(run: runs_lib.Run, status: int, workdir: str) -> RuntimeError:
    return RuntimeError(
        f"Run {run.name!r} failed (exit status {status}); its output is in "
        f"{workdir}/log.txt. Fix it and start the sweep again: finished runs are skipped."
    )


def cpu_shares(parallel: int) -> list[list[int]]:
    """This process's CPU cores split into `parallel` equal, disjoint shares."""
    cores = sorted(os.sched_getaffinity(0))
    if not 1 <= parallel <= len(cores):
        raise UserError(
            f"--parallel={parallel}: this process may use {len(cores)} CPU core(s); pass a "
            f"number from 1 to {len(cores)}."
        )
    size = len(cores) // parallel
    return [cores[k * size : (k + 1) * size] for k in range(parallel)]


def _run_concurrently(to_train, root, run_env, python, parallel, progress) -> list[str]:
    import collections
    import signal
    import subprocess

    waiting, free = collections.deque(to_train), cpu_shares(parallel)
    active = {}  # Popen -> (i, run, cpus, start time, log file)
    failure = None

    def forward(signum, frame):
        nonlocal failure
        failure = failure or RuntimeError(f"Stopped by signal {signum}; finished runs are kept.")
        for child in active:
            child.send_signal(signum)  # each run saves a checkpoint and exits by itself

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while active or (waiting and failure is None):
            while waiting and free and failure is None:
                i, run = waiting.popleft()
                cpus, workdir = free.pop(0), run.workdir(root)
                os.makedirs(workdir, exist_ok=True)
                log_file = open(os.path.join(workdir, "log.txt"), "a", encoding="utf-8")
                argv = [python, "-u", "-m", jobs.MAIN_MODULE, *run.main_args(root)]
                child = subprocess.Popen(
                    argv,
                    env=run_env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    preexec_fn=lambda cpus=cpus: os.sched_setaffinity(0, cpus),
                )
                active[child] = (i, run, cpus, time.time(), log_file)
                progress.log(
                    f"[{i}/{progress.total}] {run.name}: started on CPU core(s) "
                    f"{','.join(map(str, cpus))}, output in {workdir}/log.txt"
                )
            time.sleep(0.2)
            for child in [c for c in active if c.poll() is not None]:
                i, run, cpus, t_run, log_file = active.pop(child)
                log_file.close()
                free.append(cpus)
                if child.returncode != 0:
                    failure = failure or _failed(run, child.returncode, run.workdir(root))
                    continue
                if not _has_result(run.workdir(root)):
                    progress.stopped(i, run, time.time() - t_run, run.workdir(root), len(cpus))
                    failure = failure or _stopped(run)
                    continue
                progress.done(i, run, time.time() - t_run, run.workdir(root), len(cpus))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if failure is not None:
        raise failure
    return progress.started


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
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="runs trained at once, each pinned to its share of the CPU cores (CPU training)",
    )
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
        run_locally(runs, root, dry_run=args.dry_run, parallel=args.parallel)
    except UserError as error:  # anything else is a bug and keeps its traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
