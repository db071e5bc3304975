"""A run's workdir: one run at a time, and a config.json that keeps describing its checkpoints.

`WorkdirLock` is a `lock.json` naming the run that holds the workdir (pid, host, process start
time). A second run on the same workdir stops at once with one sentence; a lock left by a
killed run (its pid is gone, or now belongs to another process) is taken over. A lock written
on another host cannot be checked from here and is respected: the sentence says to delete it.

`check_resume` compares the config of a resumed run with the workdir's config.json before that
file is rewritten: changing a field the checkpoint or the saved input-pipeline state depends on
is refused; any other change (learning rate, stride, steps...) is allowed, printed, and
appended to `config_changes.jsonl`, so the workdir still says what each part of the run used.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import ml_collections

from video_s3d.errors import UserError, UserFileError

LOCK_NAME = "lock.json"
CONFIG_NAME = "config.json"
CHANGES_NAME = "config_changes.jsonl"

# A lock file still empty after this long was left by a run killed while writing it.
_EMPTY_LOCK_GRACE_SEC = 10.0

# Fields a resumed run must keep: the parameters' shapes or meaning (every model field but the
# ones below), the tf.data iterator state (its buffers hold batches of this shape, from this
# split) and the optimiser state's structure.
FIXED_FIELDS = (
    "model",
    "data.name",
    "data.num_classes",
    "data.num_frames",
    "data.crop_size",
    "data.train_split",
    "batch_size",
    "optim.name",
    "task",  # detection: the detector's layers and its key-frame input pipeline
    "detector",
    "data.max_actors",
)
# Model fields that change neither the parameters nor the function they compute.
CHANGEABLE_MODEL_FIELDS = ("model.dtype", "model.remat", "model.dropout_rate")


# ---------------------------------------------------------------------------- the lock
def _process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux), to tell a reused pid from the original run."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of stat; the first two precede the ')'
    except (OSError, IndexError):
        return None


def _is_running(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: cannot be checked from here
    pid = int(holder.get("pid", -1))
    if pid <= 0 or pid == os.getpid():
        return False  # our own pid: a lock this process left behind, not another run
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = holder.get("started")
    return started is None or started == _process_start_time(pid)


class WorkdirLock:
    """Context manager: hold `workdir` for this run (no-op when not `enabled`, e.g. process > 0)."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.path = os.path.join(workdir, LOCK_NAME)
        self.workdir = workdir
        self.enabled = enabled
        self._held = False

    def __enter__(self) -> "WorkdirLock":
        if self.enabled:
            self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        mine = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": _process_start_time(os.getpid()),
            "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        for _ in range(3):  # a stale lock is removed, then creation retried (another run may win)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read_holder()
                if holder is not None and _is_running(holder):
                    where = (
                        f"pid {holder.get('pid')} on {holder.get('host')}, since "
                        f"{holder.get('since', '?')}"
                    )
                    raise UserError(
                        f"{self.workdir} is in use by another run ({where}); wait for it to end or "
                        f"use another --workdir (if that run no longer exists, delete "
                        f"{self.path})."
                    ) from None
                try:
                    os.remove(self.path)  # left by a run that was killed
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(mine, f)
            self._held = True
            return
        raise UserError(
            f"Could not take the lock {self.path}: other runs keep starting on "
            f"{self.workdir}; start one run per --workdir."
        )

    def _read_holder(self) -> dict[str, Any] | None:
        """The lock's content; None for a stale unreadable one, a placeholder while it is new."""
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            try:
                young = time.time() - os.path.getmtime(self.path) < _EMPTY_LOCK_GRACE_SEC
            except OSError:
                return None
            # Just created by a run that has not written it yet: treat as held.
            return {"host": None, "pid": "?", "since": "just now"} if young else None

    def release(self) -> None:
        if self._held:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            self._held = False


def usable_workdir(workdir: str) -> str:
    """The absolute workdir, created if needed; one sentence if it cannot be one."""
    workdir = os.path.abspath(workdir)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise UserFileError(
            f"--workdir={workdir} is a file, not a folder; pass a folder path "
            f"(it is created if missing)."
        )
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as e:
        raise UserFileError(
            f"Cannot create --workdir={workdir} ({e.strerror}); pass a folder you can write to."
        ) from None
    return workdir


# ---------------------------------------------------------------------- config on resume
def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _as_json(config: ml_collections.ConfigDict) -> dict[str, Any]:
    return json.loads(config.to_json_best_effort())


def read_config_json(workdir: str) -> dict[str, Any] | None:
    """The workdir's config.json as a dict (None if absent); one sentence if it is unreadable."""
    path = os.path.join(workdir, CONFIG_NAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(
            f"{path} is not readable JSON ({e}); restore it from a copy, or delete "
            f"it to resume with the config given now."
        ) from None
    if not isinstance(saved, dict):
        raise UserError(
            f"{path} holds a {type(saved).__name__}, not a config; restore it from "
            f"a copy, or delete it to resume with the config given now."
        )
    return saved


def _fixed(field: str) -> bool:
    if field in CHANGEABLE_MODEL_FIELDS:
        return False
    return any(field == f or field.startswith(f + ".") for f in FIXED_FIELDS)


def check_resume(
    workdir: str, config: ml_collections.ConfigDict, step: int
) -> dict[str, tuple[Any, Any]]:
    """{field: (saved, now)} for a run resuming at `step`; UserError if a fixed field changed.

    Call before config.json is rewritten. Fields absent on one side (a run saved by an older
    version) count as changes only when both sides have them.
    """
    saved = read_config_json(workdir)
    if saved is None:
        return {}
    before, now = _flatten(saved), _flatten(_as_json(config))
    changes = {
        k: (before[k], now[k]) for k in sorted(before.keys() & now.keys()) if before[k] != now[k]
    }
    refused = {k: v for k, v in changes.items() if _fixed(k)}
    if refused:
        listed = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in refused.items())
        raise UserError(
            f"{workdir} holds checkpoints (step {step}) of a run with another config: {listed}; "
            f"the checkpoint or its saved input pipeline depends on "
            f"{'that field' if len(refused) == 1 else 'those fields'}: keep the saved value(s) "
            f"(see {os.path.join(workdir, CONFIG_NAME)}) or use a new --workdir."
        )
    return changes


def write_config(
    workdir: str,
    config: ml_collections.ConfigDict,
    changes: dict[str, tuple[Any, Any]] | None = None,
    step: int | None = None,
) -> None:
    """config.json (atomically), and the changes made on resuming at `step` appended to
    config_changes.jsonl."""
    path = os.path.join(workdir, CONFIG_NAME)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    if changes:
        record = {
            "step": step,
            "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "changes": {k: {"from": old, "to": new} for k, (old, new) in changes.items()},
        }
        with open(os.path.join(workdir, CHANGES_NAME), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())
