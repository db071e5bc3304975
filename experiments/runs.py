"""A sweep is data: a list of `Run` records, each one training job.

A sweep file is a Python module with `get_sweep(arg=None) -> list[Run]`; the optional
argument string (`experiments/sweeps/heavy.py:runlocal`) is the same kind of string a
config takes and is usually forwarded to every run. `launch/sweep.py`, `launch/tpu_pod.py`
and `launch/slurm.py` turn runs into `python -m video_s3d.main` command lines with
`Run.main_args`, so every launcher starts exactly the same job.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import re
import sys
from typing import Any, Iterable, Mapping, Sequence

from ml_collections.config_flags import config_path

# Configs are named relative to the repository root, like in every documented command.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a finished run leaves in its workdir (video_s3d/evaluate.py writes it).
RESULT_FILE = "result.json"
# The config a run was trained with (video_s3d/train.py writes it).
CONFIG_FILE = "config.json"
# Its wall time and CPU cores (launch/sweep.py writes it when the run finishes).
RUN_TIME_FILE = "run_time.json"

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training job: a config file with its argument string, a seed and overrides.

    `args` are the items of the config's argument string (`("model=s3dg", "runlocal")`):
    a config may derive several fields from one of them (`runlocal` turns `s3dg` into
    `tiny_s3dg`). `overrides` become `--config.<key>=<value>` flags applied afterwards.
    """

    name: str
    config: str
    args: tuple[str, ...] = ()
    seed: int | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not _NAME_PATTERN.match(self.name):
            raise ValueError(
                f"Run name {self.name!r} must be a plain folder name (letters, digits, "
                "'_', '-', '.', '=', '+'); rename it in the sweep file."
            )

    def config_argument(self) -> str:
        """The `--config` value: `experiments/x.py:model=s3dg,runlocal`."""
        return self.config + (":" + ",".join(self.args) if self.args else "")

    def workdir(self, root: str) -> str:
        return root.rstrip("/") + "/" + self.name

    def recorded_differences(self, workdir_root: str) -> list[str]:
        """'key: recorded -> asked' for each override (and the seed) that the config.json of
        this run's workdir records with another value; [] when it has none or all agree."""
        path = os.path.join(self.workdir(workdir_root), CONFIG_FILE)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            recorded = json.load(f)
        asked = dict(self.overrides, **({"seed": self.seed} if self.seed is not None else {}))
        differences = []
        for key, value in asked.items():
            try:
                node = config_path.get_value(key, recorded)
            except (LookupError, AttributeError):
                node = _ABSENT
            if _normalised(node) != _normalised(value):
                shown = "(absent)" if node is _ABSENT else node
                differences.append(f"{key}: {shown} -> {value}")
        return differences

    def main_args(self, workdir_root: str) -> list[str]:
        """Arguments after `python -m video_s3d.main` for this run."""
        args = [f"--config={self.config_argument()}", f"--workdir={self.workdir(workdir_root)}"]
        if self.seed is not None:
            args.append(f"--config.seed={self.seed}")
        for key, value in self.overrides.items():
            args.append(f"--config.{key}={_flag_value(value)}")
        return args


_ABSENT = object()


def _normalised(value: Any) -> Any:
    """Tuples and lists alike: JSON has only lists."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _flag_value(value: Any) -> str:
    # ml_collections parses override values by the field's type; tuples/lists as Python literals.
    if isinstance(value, (list, tuple)):
        return repr(tuple(value))
    return str(value)


def config_items(**values: Any) -> tuple[str, ...]:
    """Argument-string items: `runlocal=True` -> 'runlocal', `batch=64` -> 'batch=64';
    False, None and '' are left out (the config's default applies)."""
    items = []
    for key, value in values.items():
        if value is True:
            items.append(key)
        elif value not in (False, None, ""):
            items.append(f"{key}={value}")
    return tuple(items)


def grid(
    config: str,
    models: Sequence[str | None] = (None,),
    datasets: Sequence[str | None] = (None,),
    seeds: Sequence[int] = (0,),
    overrides: Sequence[Mapping[str, Any]] = ({},),
    args: Iterable[str] = (),
    model_key: str = "model",
    dataset_key: str = "dataset",
    prefix: str = "",
) -> list[Run]:
    """The cross product model x dataset x seed x overrides, with readable run names.

    Model and dataset go into the argument string under `model_key` / `dataset_key` (the
    names the config's get_config reads). Names read
    `<prefix><model>-<dataset>-s<seed>[-key=value...]`; a `None` model or dataset is left out,
    and so are the overrides when there is only one set (it does not tell runs apart).
    """
    runs = []
    for model, dataset, seed, extra in itertools.product(models, datasets, seeds, overrides):
        parts = [p for p in (model, dataset) if p is not None] + [f"s{seed}"]
        if len(overrides) > 1:
            parts += [f"{key.split('.')[-1]}={_flag_value(v)}" for key, v in extra.items()]
        items = config_items(**{model_key: model, dataset_key: dataset}) + tuple(args)
        runs.append(
            Run(
                name=prefix + "-".join(parts),
                config=config,
                args=items,
                seed=seed,
                overrides=dict(extra),
            )
        )
    return runs


def split_argument(arg: str | None) -> tuple[str, ...]:
    """Splits an argument string (`model=s3dg,runlocal`) into its items, for `Run.args`."""
    return tuple(item.strip() for item in (arg or "").split(",") if item.strip())


def load_sweep(spec: str) -> list[Run]:
    """Loads `path/to/sweep.py[:arg]` (path relative to the repo root or absolute)."""
    path, _, arg = spec.partition(":")
    full_path = path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)
    if not os.path.isfile(full_path):
        raise FileNotFoundError(
            f"Sweep file {path!r} does not exist; pass a path such as "
            "experiments/sweeps/synthetic.py (relative to the repository root)."
        )
    module = _import_file(full_path)
    if not hasattr(module, "get_sweep"):
        raise ValueError(
            f"Sweep file {path!r} has no get_sweep() function; add one that "
            "returns a list of experiments.runs.Run."
        )
    runs = module.get_sweep(arg) if arg else module.get_sweep()
    check_unique_names(runs, path)
    return list(runs)


def _import_file(path: str):
    """The module at `path`: by its package name inside the repository (one module object,
    whoever imports it), else from the file under a private name."""
    relative = os.path.relpath(os.path.abspath(path), REPO_ROOT)[: -len(".py")].split(os.sep)
    if relative[0] != ".." and all(part.isidentifier() for part in relative):
        return importlib.import_module(".".join(relative))
    name = "_sweep_" + re.sub(r"\W", "_", path)
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    module_spec.loader.exec_module(module)
    return module


def check_unique_names(runs: Sequence[Run], where: str) -> None:
    seen = set()
    for run in runs:
        if run.name in seen:
            raise ValueError(
                f"Run name {run.name!r} appears twice in {where}; every run needs "
                "its own name because it becomes the run's workdir."
            )
        seen.add(run.name)


def select(runs: Sequence[Run], pattern: str | None) -> list[Run]:
    """The runs whose name matches the regular expression `pattern` (all if None)."""
    if not pattern:
        return list(runs)
    chosen = [run for run in runs if re.search(pattern, run.name)]
    if not chosen:
        raise ValueError(f"No run name matches --only={pattern!r}; list the names with --dry_run.")
    return chosen
