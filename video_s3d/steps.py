"""Which checkpoint of a run to restore: `best`, `latest` or a step number.

Every entry point that restores a run takes the same choice (`--step` on predict, features,
export and `video_s3d.main --mode=eval`; an `@best` / `@latest` / `@N` suffix, or a
`checkpoints/<N>` path, on `config.init_from`). `best` is the kept step with the highest
validation video top-1 (`checkpointing.BEST_METRIC`, which training records with each
evaluated checkpoint and orbax keeps beside the newest ones); a run none of whose kept steps
was evaluated (an imported run, or a training run with evaluation off) has no best, so `best`
falls back to the latest step there and says so in `describe`.
"""

from __future__ import annotations

import os
from typing import Any

from video_s3d.errors import UserError, UserFileError

BEST, LATEST = "best", "latest"


def parse(value: str | int | None, flag: str = "--step") -> str | int:
    """'best' | 'latest' | a step number >= 0; anything else is refused in one sentence."""
    if value is None:
        return BEST
    if isinstance(value, int) and not isinstance(value, bool):
        step = value
    elif str(value).strip().lower() in (BEST, LATEST):
        return str(value).strip().lower()
    elif str(value).strip().isdigit():
        step = int(str(value).strip())
    else:
        raise UserError(f"{flag}={value!r} is not a step; use best, latest or a step number.")
    if step < 0:
        raise UserError(f"{flag}={value} is negative; use best, latest or a step number.")
    return step


def resolve(ckpt, which: str | int, where: str) -> tuple[int, str]:
    """(step, how it was chosen) in the open `checkpointing.Checkpoints` `ckpt`.

    Raises FileNotFoundError naming the steps that exist when `which` cannot be met.
    """
    steps = sorted(ckpt.all_steps())
    if not steps:
        raise UserFileError(
            f"{where} holds no complete checkpoint; point it at a run that saved one."
        )
    if which == LATEST:
        return steps[-1], "latest"
    if which == BEST:
        best = ckpt.best_step()
        if best is None:
            return steps[-1], "latest; no kept step was evaluated"
        return best, "best validation accuracy"
    if which not in steps:
        kept = ", ".join(map(str, steps))
        raise UserFileError(
            f"{where} holds no checkpoint at step {which} (kept steps: "
            f"{kept}); pick one of those, best or latest."
        )
    return int(which), "as asked"


def split_source(source: str) -> tuple[str, str | int]:
    """`config.init_from` -> (workdir, step choice): `DIR`, `DIR@best|latest|N`,
    `DIR/checkpoints` or `DIR/checkpoints/<N>`. A bare workdir means the latest step (as
    before this option existed)."""
    which: str | int = LATEST
    if "@" in os.path.basename(source):
        source, _, text = source.rpartition("@")
        which = parse(text, "config.init_from's @step")
    source = source.rstrip("/")
    name, parent = os.path.basename(source), os.path.dirname(source)
    if name.isdigit() and os.path.basename(parent) == "checkpoints":
        return os.path.dirname(parent), int(name)
    if name == "checkpoints":
        return parent, which
    return source, which


def load_variables(source: str, abstract_variables: dict[str, Any], mesh) -> tuple[dict, dict]:
    """`checkpointing.load_variables` with the step chosen by `source`'s `@step` suffix or
    `checkpoints/<N>` path: (variables replicated on `mesh`, the source's run info + step)."""
    from video_s3d import checkpointing, parallel

    workdir, which = split_source(source)
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
        raise UserFileError(
            f"config.init_from={source!r} has no checkpoints folder; point it at the workdir of a "
            f"finished training run (or of video_s3d.import_weights)."
        )
    ckpt = checkpointing.Checkpoints(workdir, read_only=True)
    try:
        step, _ = resolve(ckpt, which, f"config.init_from={source!r}")
        info = ckpt.run_info(step) or {}
        target = checkpointing.abstract_like(abstract_variables, parallel.replicated(mesh))
        variables = ckpt.restore_model(step, target)
    finally:
        ckpt.close()
    return variables, dict(info, step=step)
