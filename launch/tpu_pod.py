"""Runs a config or a whole sweep on every worker of a Cloud TPU VM slice.

  python -m launch.tpu_pod --tpu=s3d-pod --zone=us-central2-b --accelerator_type=v4-32 \
      --config=experiments/kinetics400.py:model=s3dg \
      --workdir=gs://BUCKET/runs/k400_s3dg --data_dir=gs://BUCKET/tensorflow_datasets
  python -m launch.tpu_pod ... --sweep=experiments/sweeps/kinetics400.py --workdir=gs://BUCKET/runs/k400
  add --dry_run to print every command without running any (gcloud is not needed for that).

Steps: reuse the slice if `tpu-vm describe` finds it (create it otherwise); pack this
checkout (the files git tracks or would track) and `scp` it to all workers; install the
pinned requirements plus the TPU build of JAX into a venv on each worker (again only when
requirements.txt changed); then, run after run, `ssh --worker=all` starts `video_s3d.main`
on every worker at once. Each process joins the pod with `jax.distributed.initialize()`
(a TPU VM finds its coordinator by itself) and reads data and writes its workdir on GCS,
the storage every worker shares.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Sequence

from experiments import runs as runs_lib
from launch import jobs

CODE_ARCHIVE = "video_s3d-code.tar.gz"
REMOTE_CODE_DIR = "~/video_s3d"
REMOTE_VENV = "~/video_s3d_venv"
# TPU VM base images per accelerator generation (cloud.google.com/tpu/docs/runtimes).
RUNTIME_BY_GENERATION = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}
_ACCELERATOR_PATTERN = re.compile(r"^(v\d+[a-z]*)-\d+$")
# On a TPU VM jax.distributed.initialize() finds the coordinator and process ids itself.
DISTRIBUTED_OVERRIDE = "--config.distributed=True"


@dataclasses.dataclass(frozen=True)
class Step:
    """One command. The `probe` step asks whether the slice exists; `only_if_missing` steps
    run only when it does not."""

    why: str
    argv: tuple[str, ...]
    probe: bool = False
    only_if_missing: bool = False
    shell: bool = False  # argv[0] is a shell pipeline

    def line(self) -> str:
        return self.argv[0] if self.shell else shlex.join(self.argv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    jobs.add_run_arguments(parser)
    parser.add_argument(
        "--tpu", required=True, help="name of the TPU VM slice (created if missing)"
    )
    parser.add_argument("--zone", required=True, help="e.g. us-central2-b")
    parser.add_argument("--project", help="Google Cloud project (default: gcloud's configured one)")
    parser.add_argument(
        "--accelerator_type",
        default="v4-8",
        help="slice type for creation, e.g. v4-32, v5litepod-16, v6e-8",
    )
    parser.add_argument(
        "--runtime_version",
        help="TPU VM image for creation (default: the base image of the generation)",
    )
    parser.add_argument("--spot", action="store_true", help="create a Spot (preemptible) slice")
    parser.add_argument(
        "--data_dir", help="gs:// folder holding the TFDS datasets (TFDS_DATA_DIR on the workers)"
    )


def check_arguments(args: argparse.Namespace) -> None:
    if not args.workdir.startswith("gs://"):
        raise ValueError(
            f"--workdir={args.workdir} must be a gs:// path: every worker of the pod "
            "writes checkpoints and results there, and local disks are not shared."
        )
    if args.data_dir and not args.data_dir.startswith("gs://"):
        raise ValueError(
            f"--data_dir={args.data_dir} must be a gs:// path that every worker can read."
        )
    match = _ACCELERATOR_PATTERN.match(args.accelerator_type)
    if not match or (not args.runtime_version and match.group(1) not in RUNTIME_BY_GENERATION):
        raise ValueError(
            f"--accelerator_type={args.accelerator_type} is not a known TPU slice type; "
            f"use <generation>-<cores> with generation one of "
            f"{', '.join(RUNTIME_BY_GENERATION)} (or also pass --runtime_version)."
        )


def _jax_requirement() -> str:
    """The TPU build of the JAX version requirements.txt pins, so the pod runs what CI tests."""
    with open(f"{runs_lib.REPO_ROOT}/requirements.txt") as f:
        for line in f:
            if line.startswith("jax=="):
                return "jax[tpu]==" + line.strip().split("==", 1)[1]
    return "jax[tpu]"


def plan(args: argparse.Namespace, runs: Sequence[runs_lib.Run], root: str) -> list[Step]:
    """Every command, in order, for these runs on this slice."""
    where = [f"--zone={args.zone}"] + ([f"--project={args.project}"] if args.project else [])
    tpu_vm = ("gcloud", "compute", "tpus", "tpu-vm")
    generation = _ACCELERATOR_PATTERN.match(args.accelerator_type).group(1)
    runtime = args.runtime_version or RUNTIME_BY_GENERATION[generation]
    archive = os.path.join(tempfile.gettempdir(), CODE_ARCHIVE)

    def on_all_workers(why: str, command: str) -> Step:
        return Step(why, (*tpu_vm, "ssh", args.tpu, "--worker=all", *where, f"--command={command}"))

    setup = " && ".join(
        [
            # The TPU VM images ship an older Python than the pinned packages need.
            "(command -v python3.11 >/dev/null || (sudo apt-get update -qq && "
            "sudo apt-get install -y -qq python3.11 python3.11-venv))",
            f"rm -rf {REMOTE_CODE_DIR}",
            f"mkdir -p {REMOTE_CODE_DIR}",
            f"tar -xzf ~/{CODE_ARCHIVE} -C {REMOTE_CODE_DIR}",
            f"(test -x {REMOTE_VENV}/bin/python || python3.11 -m venv {REMOTE_VENV})",
            f"(cmp -s {REMOTE_CODE_DIR}/requirements.txt {REMOTE_VENV}/requirements.installed || "
            f"({REMOTE_VENV}/bin/pip install -q -r {REMOTE_CODE_DIR}/requirements.txt "
            f"{shlex.quote(_jax_requirement())} && "
            f"cp {REMOTE_CODE_DIR}/requirements.txt {REMOTE_VENV}/requirements.installed))",
        ]
    )
    steps = [
        Step(
            "reuse the slice if it exists (prints its state)",
            (*tpu_vm, "describe", args.tpu, *where, "--format=value(state)"),
            probe=True,
        ),
        Step(
            "otherwise create it",
            (
                *tpu_vm,
                "create",
                args.tpu,
                *where,
                f"--accelerator-type={args.accelerator_type}",
                f"--version={runtime}",
                *(["--spot"] if args.spot else []),
            ),
            only_if_missing=True,
        ),
        Step(
            "pack this checkout (tracked and untracked, not ignored files)",
            (
                f"cd {shlex.quote(runs_lib.REPO_ROOT)} && git ls-files -co --exclude-standard "
                f"| tar -czf {shlex.quote(archive)} -T -",
            ),
            shell=True,
        ),
        Step(
            "copy it to every worker",
            (*tpu_vm, "scp", archive, f"{args.tpu}:{CODE_ARCHIVE}", "--worker=all", *where),
        ),
        on_all_workers("unpack it and install the requirements on every worker", setup),
    ]
    env = f"TFDS_DATA_DIR={shlex.quote(args.data_dir)} " if args.data_dir else ""
    for i, run in enumerate(runs, 1):
        # The python path stays unquoted so that the remote shell expands its `~`.
        main = f"{REMOTE_VENV}/bin/python " + shlex.join(
            ["-m", jobs.MAIN_MODULE, *run.main_args(root), DISTRIBUTED_OVERRIDE]
        )
        steps.append(
            on_all_workers(
                f"run {i}/{len(runs)}: {run.name}", f"cd {REMOTE_CODE_DIR} && {env}{main}"
            )
        )
    return steps


def _describe_finds_slice(step: Step, log: Callable[[str], None]) -> bool:
    found = subprocess.run(step.argv, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        log("  not found, creating it")
        return False
    state = found.stdout.strip()
    if state not in ("READY", ""):
        raise RuntimeError(
            f"TPU slice is in state {state}; wait until it is READY, or delete it "
            "(gcloud compute tpus tpu-vm delete ...) and launch again to recreate it."
        )
    log(f"  found it ({state or 'state unknown'}), reusing it")
    return True


def execute(steps: Sequence[Step], dry_run: bool, log: Callable[[str], None] = print) -> None:
    if not dry_run and shutil.which("gcloud") is None:
        raise FileNotFoundError(
            "gcloud is not installed: install the Google Cloud SDK "
            "(cloud.google.com/sdk/docs/install) or pass --dry_run to print the commands."
        )
    exists = None
    for step in steps:
        if dry_run:
            log(
                f"# {step.why}"
                + (" (only if the describe above fails)" if step.only_if_missing else "")
            )
            log(step.line())
            continue
        if step.only_if_missing and exists:
            continue
        log(f"==> {step.why}\n{step.line()}")
        if step.probe:
            exists = _describe_finds_slice(step, log)
            continue
        status = subprocess.run(
            step.argv[0] if step.shell else step.argv, shell=step.shell, check=False
        ).returncode
        if status != 0:
            raise RuntimeError(
                f"Step '{step.why}' failed with exit status {status}; its output is "
                "above. Fix the cause and launch again: finished runs on GCS are kept."
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.tpu_pod",
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
    execute(plan(args, runs, root), args.dry_run)


if __name__ == "__main__":
    main(sys.argv[1:])
