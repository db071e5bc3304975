"""Renders (and with --submit, submits) a SLURM batch script per run, from launch/templates/slurm.sbatch.

  python -m launch.slurm --config=experiments/kinetics400.py:model=s3dg \
      --workdir=/scratch/runs/k400_s3dg --nodes=2 --gpus_per_node=8 --partition=gpu --submit
  python -m launch.slurm --sweep=experiments/sweeps/kinetics400.py --workdir=/scratch/runs/k400 ...
  add --dry_run to print the scripts and the sbatch commands without writing or submitting.

The script goes to `<workdir>/slurm.sbatch` and SLURM's log to `<workdir>/slurm-<jobid>.out`.
Inside the job, `srun` starts one process per GPU (default) or one per node, and each joins
`jax.distributed` with the first node of SLURM_JOB_NODELIST as coordinator, SLURM_PROCID as
its process id and SLURM_NTASKS as the process count. The workdir must be on a file system
every node sees.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Callable, Mapping, Sequence

from experiments import runs as runs_lib
from launch import jobs
from video_s3d import runtime

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "slurm.sbatch")
SCRIPT_NAME = "slurm.sbatch"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_TIME_PATTERN = re.compile(r"^(\d+-)?\d+(:\d\d){0,2}$")


def render(template: str, values: Mapping[str, object]) -> str:
    """Fills every `{{name}}`; a placeholder without a value is a bug in the caller."""
    missing = sorted(set(_PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise KeyError(f"No value for template placeholders {missing}.")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    jobs.add_run_arguments(parser)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus_per_node", type=int, default=8)
    parser.add_argument(
        "--process_per",
        choices=("gpu", "node"),
        default="gpu",
        help="one process per GPU (each sees one device) or per node (sees all)",
    )
    parser.add_argument(
        "--cpus_per_gpu", type=int, default=8, help="CPU cores per GPU, for the input pipeline"
    )
    parser.add_argument("--time", default="24:00:00", help="wall-clock limit, [D-]HH:MM:SS")
    parser.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    parser.add_argument("--account", help="SLURM account to charge")
    parser.add_argument(
        "--sbatch_option",
        action="append",
        default=[],
        help="extra '#SBATCH' option, e.g. --sbatch_option=--constraint=a100 (repeatable)",
    )
    parser.add_argument(
        "--python",
        default=os.path.join(runs_lib.REPO_ROOT, ".venv", "bin", "python"),
        help="the Python with video_s3d's requirements on the compute nodes",
    )
    parser.add_argument("--data_dir", help="folder holding the TFDS datasets (TFDS_DATA_DIR)")
    parser.add_argument("--submit", action="store_true", help="submit each script with sbatch")


def check_arguments(args: argparse.Namespace) -> None:
    if args.nodes < 1 or args.gpus_per_node < 1 or args.cpus_per_gpu < 1:
        raise ValueError("--nodes, --gpus_per_node and --cpus_per_gpu must be at least 1.")
    if not _TIME_PATTERN.match(args.time):
        raise ValueError(
            f"--time={args.time} is not a SLURM time; write it as [D-]HH:MM:SS, e.g. 24:00:00."
        )
    if args.workdir.startswith("gs://"):
        raise ValueError(
            f"--workdir={args.workdir} must be a folder on the cluster's shared file "
            "system; gs:// workdirs are for launch.tpu_pod."
        )


def render_run(args: argparse.Namespace, run: runs_lib.Run, root: str) -> str:
    """The batch script of one run."""
    per_gpu = args.process_per == "gpu"
    tasks_per_node = args.gpus_per_node if per_gpu else 1
    workdir = run.workdir(root)
    extra = [f"#SBATCH --partition={args.partition}"] if args.partition else []
    extra += [f"#SBATCH --account={args.account}"] if args.account else []
    extra += [f"#SBATCH {option}" for option in args.sbatch_option]
    environment = ["export PYTHONUNBUFFERED=1"]
    if args.data_dir:
        environment.append(f"export TFDS_DATA_DIR={shlex.quote(args.data_dir)}")
    return render(
        _read_template(),
        {
            "run_name": run.name,
            "script_path": shlex.quote(os.path.join(workdir, SCRIPT_NAME)),
            "job_name": "s3d-" + run.name,
            "nodes": args.nodes,
            "tasks_per_node": tasks_per_node,
            "gpus_per_node": args.gpus_per_node,
            "cpus_per_task": args.cpus_per_gpu * (1 if per_gpu else args.gpus_per_node),
            "time": args.time,
            # SLURM expands %j itself and reads the path unquoted, so it must hold no spaces.
            "log_path": os.path.join(workdir, "slurm-%j.out"),
            "extra_sbatch_lines": "\n".join(extra),
            "repo_dir": shlex.quote(runs_lib.REPO_ROOT),
            "environment_lines": "\n".join(environment),
            "process_unit": "GPU" if per_gpu else "node",
            "select_devices": (
                'export CUDA_VISIBLE_DEVICES="$SLURM_LOCALID"  # the GPU of this task'
                if per_gpu
                else ": every GPU of the node belongs to this task"
            ),
            "coordinator_env": runtime.COORDINATOR_ENV,
            "num_processes_env": runtime.NUM_PROCESSES_ENV,
            "process_id_env": runtime.PROCESS_ID_ENV,
            "python": shlex.quote(args.python),
            "main_args": shlex.join(run.main_args(root)),
        },
    )


def _read_template() -> str:
    with open(TEMPLATE) as f:
        return f.read()


def launch(
    args: argparse.Namespace,
    runs: Sequence[runs_lib.Run],
    root: str,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Writes (and submits) each run's script; returns the script paths."""
    if args.submit and not args.dry_run and shutil.which("sbatch") is None:
        raise FileNotFoundError(
            "sbatch is not on PATH: run this on the cluster's login node, "
            "or leave out --submit to only write the scripts."
        )
    # sbatch resolves relative paths against the directory it is called from: make them absolute.
    root, paths = os.path.abspath(root), []
    for run in runs:
        if " " in run.workdir(root):
            raise ValueError(
                f"Workdir {run.workdir(root)!r} holds a space, which SLURM's "
                "--output cannot take; choose a path without spaces."
            )
        script, path = render_run(args, run, root), os.path.join(run.workdir(root), SCRIPT_NAME)
        paths.append(path)
        if args.dry_run:
            log(f"# ---- {path}\n{script}# ----\nsbatch {shlex.quote(path)}\n")
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(script)
        if args.submit:
            submitted = subprocess.run(
                ["sbatch", path], capture_output=True, text=True, check=False
            )
            if submitted.returncode != 0:
                raise RuntimeError(f"sbatch refused {path}: {submitted.stderr.strip()}")
            log(f"{run.name}: {submitted.stdout.strip()}")
        else:
            log(f"{run.name}: wrote {path}; submit it with: sbatch {shlex.quote(path)}")
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.slurm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(args)
    runs, root = jobs.runs_from_args(args)
    launch(args, runs, root)


if __name__ == "__main__":
    main(sys.argv[1:])
