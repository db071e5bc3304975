r"""N cooperating JAX processes on this machine: multi-host training without the hosts.

  python -m launch.multiprocess --num_processes=2 --devices_per_process=2 -- \
      --config=experiments/synthetic_motion.py:runlocal --workdir=runs/two_process

Each process gets VIDEO_S3D_COORDINATOR / _NUM_PROCESSES / _PROCESS_ID, which make
`video_s3d.main` call `jax.distributed.initialize("127.0.0.1:PORT", N, i)`; on the CPU it
also gets its own simulated device count. Collectives between the processes go through
JAX's CPU collectives (gloo), so this runs exactly the multi-host code path: per-host
input, global arrays assembled from process-local data, process 0 alone writing logs, a
collective orbax checkpoint. Output lines are prefixed with `[pI]`; if one process fails the
others are stopped and the launcher exits non-zero. SIGTERM/SIGINT are passed on to every
process (JAX's preemption service then agrees on a step at which all of them save).

With GPUs, `--gpus_per_process=K` gives process i the GPUs i*K .. i*K+K-1 instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from launch.local import MAIN_MODULE, run_environment, split_at_dashes
from video_s3d import runtime

STOP_GRACE_SECONDS = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_environment(
    process_id: int,
    num_processes: int,
    port: int,
    *,
    devices_per_process: int | None,
    gpus_per_process: int | None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    env = run_environment(cpu_devices=None if gpus_per_process else devices_per_process, base=base)
    env[runtime.COORDINATOR_ENV] = f"127.0.0.1:{port}"
    env[runtime.NUM_PROCESSES_ENV] = str(num_processes)
    env[runtime.PROCESS_ID_ENV] = str(process_id)
    if gpus_per_process:
        first = process_id * gpus_per_process
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(first + k) for k in range(gpus_per_process))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _pump(prefix: str, stream, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            sys.stdout.write(f"{prefix} {line}")
            sys.stdout.flush()


def launch(
    main_args: Sequence[str],
    *,
    num_processes: int,
    devices_per_process: int | None,
    gpus_per_process: int | None = None,
    port: int | None = None,
    module: str = MAIN_MODULE,
    python: str = sys.executable,
) -> int:
    """Starts the processes, streams their prefixed output, returns 0 only if all succeed."""
    port = port or free_port()
    lock = threading.Lock()
    children, pumps = [], []
    for i in range(num_processes):
        env = process_environment(
            i,
            num_processes,
            port,
            devices_per_process=devices_per_process,
            gpus_per_process=gpus_per_process,
        )
        child = subprocess.Popen(
            [python, "-u", "-m", module, *main_args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        children.append(child)
        pump = threading.Thread(target=_pump, args=(f"[p{i}]", child.stdout, lock), daemon=True)
        pump.start()
        pumps.append(pump)

    def forward(signum, frame):
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    failed: list[tuple[int, int]] = []
    try:
        while True:
            statuses = [c.poll() for c in children]  # poll every child, every time
            if all(s is not None for s in statuses):
                break
            failed = [(i, s) for i, s in enumerate(statuses) if s not in (None, 0)]
            if failed:
                _stop(children)  # the others would wait forever in a collective
                break
            time.sleep(0.2)
        for c in children:
            c.wait()
        for p in pumps:
            p.join(timeout=5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    failed = failed or [(i, c.returncode) for i, c in enumerate(children) if c.returncode != 0]
    if failed:
        print(
            f"[launch.multiprocess] process(es) {', '.join(f'p{i} (exit {rc})' for i, rc in failed)} "
            f"failed; the others were stopped.",
            file=sys.stderr,
            flush=True,
        )
        return failed[0][1] or 1
    return 0


def _stop(children: list[subprocess.Popen]) -> None:
    for c in children:
        if c.poll() is None:
            c.terminate()
    deadline = time.time() + STOP_GRACE_SECONDS
    for c in children:
        try:
            c.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            c.kill()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.multiprocess", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--num_processes", type=int, required=True)
    parser.add_argument(
        "--devices_per_process", type=int, default=None, help="simulated CPU devices per process"
    )
    parser.add_argument(
        "--gpus_per_process",
        type=int,
        default=None,
        help="GPUs per process (sets CUDA_VISIBLE_DEVICES) instead of CPU devices",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="coordinator port (default: a free one)"
    )
    parser.add_argument(
        "--module", default=MAIN_MODULE, help="module each process runs with the arguments after --"
    )
    return parser


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    own, main_args = split_at_dashes(argv)
    parser = build_parser()
    args = parser.parse_args(own)
    if args.num_processes < 1:
        parser.error("--num_processes must be at least 1")
    if args.devices_per_process is not None and args.devices_per_process < 1:
        parser.error("--devices_per_process must be at least 1")
    if not main_args:
        parser.error(
            "pass the run after --, e.g. -- --config=experiments/synthetic_motion.py "
            "--workdir=runs/two_process"
        )
    return args, main_args


def main(argv: Sequence[str] | None = None) -> int:
    args, main_args = parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"[launch.multiprocess] {args.num_processes} processes x "
        f"{args.gpus_per_process or args.devices_per_process or 'default'} devices: "
        f"python -m {args.module} {' '.join(main_args)}",
        flush=True,
    )
    return launch(
        main_args,
        num_processes=args.num_processes,
        devices_per_process=args.devices_per_process,
        gpus_per_process=args.gpus_per_process,
        port=args.port,
        module=args.module,
    )


if __name__ == "__main__":
    sys.exit(main())
