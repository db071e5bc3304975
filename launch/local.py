r"""One training (or evaluation) run on this machine: one GPU, one TPU host, or the CPU.

  python -m launch.local -- --config=experiments/synthetic_motion.py:model=tiny_s3dg \
      --workdir=runs/synthetic_motion/tiny_s3dg
  # pretend the CPU is 8 devices (exercises the data-parallel path without accelerators):
  python -m launch.local --cpu_devices=8 -- --config=... --workdir=...

Everything after `--` goes to `python -m video_s3d.main` unchanged. The launcher adds what
a bare `python -m video_s3d.main` leaves to the user: the environment (TensorFlow kept off
the accelerators, JAX not pre-allocating all GPU memory when asked, simulated CPU devices,
glibc's malloc tuned for XLA's per-step buffers: video_s3d/allocator.py),
a copy of the output in `<workdir>/log.txt`, SIGTERM/SIGINT passed on to the run so that it
saves a checkpoint before exiting, and the run's exit status as its own.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from video_s3d import allocator

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN_MODULE = "video_s3d.main"


def run_environment(
    cpu_devices: int | None = None,
    gpu_memory_fraction: float | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The child's environment: `base` (default os.environ) plus the launcher's settings."""
    env = dict(os.environ if base is None else base)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Freed memory kept and on huge pages: a faster CPU step (video_s3d/allocator.py).
    env = allocator.with_tuned_allocator(env)
    if cpu_devices:
        flags = [
            f
            for f in env.get("XLA_FLAGS", "").split()
            if not f.startswith("--xla_force_host_platform_device_count")
        ]
        env["XLA_FLAGS"] = " ".join(
            flags + [f"--xla_force_host_platform_device_count={cpu_devices}"]
        )
        env["JAX_PLATFORMS"] = "cpu"
    if gpu_memory_fraction:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = str(gpu_memory_fraction)
    # The package imports from anywhere; relative --config/--workdir stay relative to the caller.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return env


def split_at_dashes(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the launcher's own arguments, those after `--` for the program it starts)."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1 :]


def workdir_of(main_args: Sequence[str]) -> str | None:
    for i, arg in enumerate(main_args):
        if arg.startswith("--workdir="):
            return arg.split("=", 1)[1]
        if arg == "--workdir" and i + 1 < len(main_args):
            return main_args[i + 1]
    return None


def run(
    main_args: Sequence[str],
    env: dict[str, str],
    log_path: str | None,
    python: str = sys.executable,
) -> int:
    """Runs main, tees its output to `log_path`, forwards SIGTERM/SIGINT; returns its status."""
    argv = [python, "-u", "-m", MAIN_MODULE, *main_args]
    log_file = None
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        log_file = open(log_path, "a", encoding="utf-8")
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )

    def forward(signum, frame):
        child.send_signal(signum)  # the run saves a checkpoint and exits by itself

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for line in child.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if log_file:
                log_file.write(line)
                log_file.flush()
        return child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if log_file:
            log_file.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.local",
        description=__doc__.split("\n\n")[0],
        epilog="Arguments after -- go to video_s3d.main, e.g. -- --config=experiments/"
        "synthetic_motion.py --workdir=runs/x",
    )
    parser.add_argument(
        "--cpu_devices",
        type=int,
        default=None,
        help="run on the CPU as this many simulated devices",
    )
    parser.add_argument(
        "--gpu_memory_fraction",
        type=float,
        default=None,
        help="fraction of GPU memory JAX may take (default: JAX's own)",
    )
    parser.add_argument(
        "--no_log_file", action="store_true", help="do not copy the output to <workdir>/log.txt"
    )
    parser.add_argument("--dry_run", action="store_true", help="print the command and exit")
    return parser


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    own, main_args = split_at_dashes(argv)
    parser = build_parser()
    args = parser.parse_args(own)
    if not any(a.startswith("--config") for a in main_args) or workdir_of(main_args) is None:
        parser.error(
            "pass the run after --, e.g. -- --config=experiments/synthetic_motion.py "
            "--workdir=runs/synthetic_motion"
        )
    return args, main_args


def main(argv: Sequence[str] | None = None) -> int:
    args, main_args = parse_args(sys.argv[1:] if argv is None else argv)
    env = run_environment(args.cpu_devices, args.gpu_memory_fraction)
    command = " ".join([sys.executable, "-m", MAIN_MODULE, *main_args])
    if args.dry_run:
        print(command)
        return 0
    workdir = workdir_of(main_args)
    print(f"[launch.local] {command}", flush=True)
    status = run(main_args, env, None if args.no_log_file else os.path.join(workdir, "log.txt"))
    if status != 0:
        print(f"[launch.local] the run exited with status {status}", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
