"""glibc's malloc settings for training processes: freed memory kept, and backed by huge pages.

XLA:CPU allocates each step's temporaries afresh (for full-size s3d_torchvision at 2x16x224²,
one 1.26 GB buffer and three of 41-283 MB). With glibc's defaults those large blocks are
mmap'd and unmapped every step, so every step faults in about 330k fresh 4 KiB pages (0.7 s of
kernel time per step on the 2-core development machine, session 16). These tunables keep freed
memory in the heap for the next step (no mmap'd chunks, no trimming) and ask the kernel for
transparent huge pages on it (`hugetlb=1`, glibc 2.35+, which madvises when THP is in
`madvise` mode, as on that machine): the same step then faults about 9k pages and spends
0.1 s in the kernel. A single arena (`MALLOC_ARENA_MAX=1`) is left out: with it the step
spent 1.0 s per step in the kernel again (session 19, loaded machine, two rounds).

They must be in the environment when a process starts, so the launchers (launch/local.py)
and the Makefile set them for every process they start; for `python -m video_s3d.main` run
by hand:
  export GLIBC_TUNABLES=$(python -m video_s3d.allocator)
Another libc or an older glibc ignores them. A setting the user already made wins, tunable by
tunable. (glibc rewrites the variable in the process's initial environment block, so
/proc/PID/environ of a running process shows only its first tunable; os.environ shows all.)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

ENV_VAR = "GLIBC_TUNABLES"
# trim_threshold: bytes of free heap top kept before returning memory (about 100 GB: never).
TUNABLES = {
    "glibc.malloc.hugetlb": "1",
    "glibc.malloc.mmap_max": "0",
    "glibc.malloc.trim_threshold": str(10**11),
}
# Set through the older MALLOC_*_ variables, these also change what the tunables do.
_LEGACY_VARS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def _parse(value: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in value.split(":") if "=" in item)
    return {name: setting for name, setting in pairs}


def tunables_value(user_value: str = "") -> str:
    """GLIBC_TUNABLES with ours added to `user_value` (the user's own settings kept)."""
    merged = {**TUNABLES, **_parse(user_value)}
    return ":".join(f"{name}={setting}" for name, setting in merged.items())


def with_tuned_allocator(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus TUNABLES in GLIBC_TUNABLES, for a child process to start with."""
    env = dict(env)
    env[ENV_VAR] = tunables_value(env.get(ENV_VAR, ""))
    return env


def with_default_allocator(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without any malloc setting: glibc's defaults (a benchmark's baseline)."""
    env = dict(env)
    for name in (ENV_VAR, *_LEGACY_VARS):
        env.pop(name, None)
    return env


def is_tuned(env: Mapping[str, str]) -> bool:
    """Whether `env` (e.g. os.environ as this process started) holds every one of TUNABLES."""
    have = _parse(env.get(ENV_VAR, ""))
    return all(have.get(name) == setting for name, setting in TUNABLES.items())


def build_parser() -> argparse.ArgumentParser:
    from video_s3d import arguments  # noqa: PLC0415

    parser = arguments.parser(
        "video_s3d.allocator",
        "Prints GLIBC_TUNABLES with this project's malloc settings added to yours.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="say whether this shell's environment already holds them (exit status 1 if not)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.check:
        print(tunables_value(os.environ.get(ENV_VAR, "")))
        return 0
    if is_tuned(os.environ):
        print("GLIBC_TUNABLES holds this project's malloc settings.")
        return 0
    print(
        "GLIBC_TUNABLES lacks this project's malloc settings: export GLIBC_TUNABLES=$(python -m video_s3d.allocator)"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
