"""What every launcher shares: which runs to start, one config or a sweep."""

from __future__ import annotations

import argparse
import os

from experiments import runs as runs_lib
from launch.local import MAIN_MODULE  # noqa: F401 -- every launcher starts the same entry point


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", help="one config, experiments/<file>.py[:args]")
    which.add_argument("--sweep", help="a sweep file, experiments/sweeps/<file>.py[:args]")
    parser.add_argument(
        "--workdir",
        required=True,
        help="with --config the run's workdir; with --sweep the folder that gets one "
        "workdir per run (named after the run)",
    )
    parser.add_argument("--only", help="regular expression: start only the runs whose name matches")
    parser.add_argument(
        "--dry_run", action="store_true", help="print every command instead of running it"
    )


def runs_from_args(args: argparse.Namespace) -> tuple[list[runs_lib.Run], str]:
    """The selected runs and the folder their workdirs live in."""
    if args.sweep:
        runs = runs_lib.load_sweep(args.sweep)
        root = args.workdir
    else:
        path, _, arg = args.config.partition(":")
        full_path = path if os.path.isabs(path) else os.path.join(runs_lib.REPO_ROOT, path)
        if not os.path.isfile(full_path):
            raise FileNotFoundError(
                f"Config file {path!r} does not exist; pass a path such as "
                "experiments/kinetics400.py (relative to the repository root)."
            )
        workdir = args.workdir.rstrip("/")
        root, name = workdir.rsplit("/", 1) if "/" in workdir else (".", workdir)
        runs = [runs_lib.Run(name=name, config=path, args=runs_lib.split_argument(arg))]
    return runs_lib.select(runs, args.only), root
