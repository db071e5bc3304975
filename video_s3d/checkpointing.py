"""Checkpoints with orbax: async save, keep-last-K plus best, exact resume, preemption.

Layout of `workdir`:
  checkpoints/<step>/model      params + batch_stats (what fine-tuning and evaluation read)
  checkpoints/<step>/optimizer  step + optimiser state
  checkpoints/<step>/run        JSON: model name, num_classes, dataset (checked on resume)
  input_state/<step>/process_<i>*  each process's data-iterator state at that step

The iterator state lives outside orbax's step folders because orbax writes those
atomically (temporary folder, renamed when complete) and the tf.data iterator writes its
own files; it is saved synchronously before the (async) orbax save of the same step, and
old steps are pruned to the ones orbax keeps.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import sys
import threading
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging as absl_logging
from etils import epath
from jax.experimental import multihost_utils

from video_s3d import parallel
from video_s3d.errors import UserError, UserFileError

BEST_METRIC = "video_top1"
# What "best" ranks by, per task: the first of these a step's recorded metrics hold
# (classification records video top-1, detection frame-mAP@0.5).
BEST_METRICS = (BEST_METRIC, "frame_map@0.5")


def best_score(metrics: dict[str, float]) -> float:
    return next(metrics[key] for key in BEST_METRICS if key in metrics)


# Orbax splits the write of a replicated array over its replicas, compiling one slicing
# program per (shape, device): ~400 compiles and ~45 s per save of tiny_s3dg on 8 CPU
# devices. Only arrays with at least this many bytes per replica are split.
MIN_BYTES_FOR_REPLICA_PARALLEL_WRITE = 4 << 20


def _register_array_handler() -> None:
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns about every override
    try:
        ocp.type_handlers.register_type_handler(
            jax.Array,
            ocp.type_handlers.ArrayHandler(
                min_slice_bytes_for_replica_parallel=MIN_BYTES_FOR_REPLICA_PARALLEL_WRITE
            ),
            override=True,
        )
    finally:
        absl_logging.set_verbosity(verbosity)


_register_array_handler()


class Checkpoints:
    """One run's orbax manager plus the per-process data-iterator states."""

    def __init__(
        self, workdir: str, *, keep: int = 3, async_save: bool = True, read_only: bool = False
    ):
        self.workdir = os.path.abspath(workdir)
        self.directory = os.path.join(self.workdir, "checkpoints")
        self.input_dir = os.path.join(self.workdir, "input_state")
        self._check_step_folders()
        policies = ocp.checkpoint_managers
        options = ocp.CheckpointManagerOptions(
            # Keep the newest `keep`, and the best by validation accuracy on top of them.
            preservation_policy=policies.AnyPreservationPolicy(
                [
                    policies.LatestN(n=max(int(keep), 1)),
                    policies.BestN(
                        get_metric_fn=best_score,
                        n=1,
                        keep_checkpoints_without_metrics=False,
                    ),
                ]
            ),
            # best_fn also makes orbax write each step's metrics, so the best survives a resume.
            best_fn=best_score,
            best_mode="max",
            enable_async_checkpointing=async_save,
            read_only=read_only,
            create=not read_only,
        )
        self.manager = ocp.CheckpointManager(
            epath.Path(self.directory), options=options, item_names=("model", "optimizer", "run")
        )

    def _check_step_folders(self) -> None:
        """One sentence naming a step folder orbax would list but cannot restore.

        Orbax writes a step into a temporary folder and renames it when complete, so a
        `checkpoints/<step>` without `model/` was made by hand or by a partial copy; orbax
        would count it as the latest step and fail with a KeyError naming no folder.
        """
        if not os.path.isdir(self.directory):
            return
        for name in sorted(os.listdir(self.directory), key=lambda n: (len(n), n)):
            folder = os.path.join(self.directory, name)
            if (
                name.isdigit()
                and os.path.isdir(folder)
                and not os.path.isdir(os.path.join(folder, "model"))
            ):
                what = "is empty" if not os.listdir(folder) else "has no model/ folder"
                raise UserFileError(
                    f"Checkpoint folder {folder} {what} (a partial copy or a stray folder, not "
                    f"a checkpoint orbax wrote); delete or move it away and rerun."
                )

    def processes_at(self, step: int) -> int:
        """How many processes wrote the data-iterator states of `step` (0: none saved)."""
        names = (
            os.listdir(os.path.join(self.input_dir, str(step)))
            if os.path.isdir(os.path.join(self.input_dir, str(step)))
            else []
        )
        return len({m.group(1) for n in names if (m := re.match(r"process_(\d+)", n))})

    def check_process_count(self, step: int) -> None:
        """A resume must run as many processes as wrote `step`: each restores its own input
        position, and a different count would split the data (and batches) differently."""
        writers = self.processes_at(step)
        if writers and writers != jax.process_count():
            raise UserError(
                f"Checkpoint step {step} in {self.directory} was written by {writers} processes "
                f"but this run has {jax.process_count()}; resume with {writers} processes (the "
                f"same launch command) or start a new --workdir."
            )

    # ----------------------------------------------------------------- queries
    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def best_step(self) -> int | None:
        """The kept step with the highest validation accuracy (None if none was evaluated)."""
        scored = [
            (best_score(m), step)
            for step in self.all_steps()
            if (m := self.manager.metrics(step)) and any(key in m for key in BEST_METRICS)
        ]
        return max(scored)[1] if scored else None

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def run_info(self, step: int | None = None) -> dict[str, Any] | None:
        """The JSON recorded with a checkpoint (latest by default), or None if there is none."""
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        restored = self.manager.restore(step, args=ocp.args.Composite(run=ocp.args.JsonRestore()))
        return dict(restored["run"])

    def check_same_run(self, run_info: dict[str, Any]) -> None:
        """Fails in one sentence if the workdir holds another model's (or classes') checkpoint."""
        saved = self.run_info()
        if saved is None:
            return
        self.check_process_count(self.latest_step())
        for key in ("model", "num_classes"):
            if saved.get(key) != run_info.get(key):
                raise UserError(
                    f"{self.workdir} already holds checkpoints of model {saved.get('model')!r} with "
                    f"{saved.get('num_classes')} classes, but the config asks for model "
                    f"{run_info.get('model')!r} with {run_info.get('num_classes')} classes; use a new "
                    f"--workdir (or delete {self.directory} to start over)."
                )
        # Same count, other classes: e.g. a dataset version that replaced a class pair. Resuming
        # would train on mislabelled checkpoints, and a finished run would report stale results.
        saved_names, names = saved.get("class_names"), run_info.get("class_names")
        if saved_names and names and list(saved_names) != list(names):
            changed = [f"{old!r} -> {new!r}" for old, new in zip(saved_names, names) if old != new]
            raise UserError(
                f"{self.workdir} already holds checkpoints trained on other classes than "
                f"{run_info.get('dataset')!r} has now ({', '.join(changed)}); use a new --workdir "
                f"(or delete {self.directory} to start over)."
            )

    # ------------------------------------------------------------ save/restore
    def save(
        self,
        step: int,
        state,
        run_info: dict[str, Any],
        data_iterator=None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        """Iterator state now (synchronously), model and optimiser asynchronously."""
        if data_iterator is not None:
            folder = os.path.join(self.input_dir, str(step))
            os.makedirs(folder, exist_ok=True)
            data_iterator.save(os.path.join(folder, f"process_{jax.process_index()}"))
        self.manager.save(
            step,
            args=ocp.args.Composite(
                model=ocp.args.StandardSave(
                    {"params": state.params, "batch_stats": state.batch_stats}
                ),
                optimizer=ocp.args.StandardSave({"step": state.step, "opt_state": state.opt_state}),
                run=ocp.args.JsonSave(dict(run_info, step=int(step))),
            ),
            metrics=dict(metrics) if metrics else None,
            force=True,
        )
        self._prune_input_states(keep_also=step)

    def record_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Adds evaluation metrics to a step saved without them (process 0 writes).

        The final step is saved before its evaluation, so that a failing evaluation cannot
        lose the trained weights; its metrics then join it here, in the file orbax writes for
        `save(..., metrics=)` and reads for the best-step policy.
        """
        self.manager.wait_until_finished()
        if jax.process_index() != 0:
            return
        folder = os.path.join(self.directory, str(step), ocp.checkpoint_manager.METRIC_ITEM_NAME)
        os.makedirs(folder, exist_ok=True)
        write_json(
            os.path.join(folder, ocp.checkpoint_manager.METRIC_ITEM_NAME),
            {k: float(v) for k, v in metrics.items()},
        )

    def restore(self, step: int, abstract_state, data_iterator=None):
        """State at `step`, laid out like `abstract_state` (its shardings: any device count)."""
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                model=ocp.args.StandardRestore(
                    {"params": abstract_state.params, "batch_stats": abstract_state.batch_stats}
                ),
                optimizer=ocp.args.StandardRestore(
                    {"step": abstract_state.step, "opt_state": abstract_state.opt_state}
                ),
            ),
        )
        if data_iterator is not None:
            self.check_process_count(step)
            path = os.path.join(self.input_dir, str(step), f"process_{jax.process_index()}")
            if not glob.glob(path + "*"):
                raise UserFileError(
                    f"Checkpoint step {step} in {self.directory} has no data-iterator state at {path}; "
                    f"it was written by a different number of processes or copied without "
                    f"{self.input_dir}: resume with the original process count or start a new --workdir."
                )
            data_iterator.restore(path)
        model, optimizer = restored["model"], restored["optimizer"]
        return abstract_state.replace(
            step=optimizer["step"],
            params=model["params"],
            batch_stats=model["batch_stats"],
            opt_state=optimizer["opt_state"],
        )

    def restore_model(self, step: int, abstract_variables: dict[str, Any]) -> dict[str, Any]:
        """Only {'params', 'batch_stats'} (fine-tuning, evaluation)."""
        restored = self.manager.restore(
            step, args=ocp.args.Composite(model=ocp.args.StandardRestore(abstract_variables))
        )
        return restored["model"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()

    def _prune_input_states(self, keep_also: int) -> None:
        """Delete this process's iterator states for steps orbax no longer keeps."""
        if not os.path.isdir(self.input_dir):
            return
        # A just-started async save may not be listed yet, and an earlier in-flight one may
        # still be finalising: only steps below the oldest kept one are certainly gone.
        kept = set(self.all_steps()) | {keep_also}
        oldest = min(kept)
        for name in os.listdir(self.input_dir):
            if not name.isdigit() or int(name) in kept or int(name) > oldest:
                continue
            folder = os.path.join(self.input_dir, name)
            for path in glob.glob(os.path.join(folder, f"process_{jax.process_index()}*")):
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            try:
                os.rmdir(folder)  # succeeds once every process removed its own files
            except OSError:
                pass


def abstract_like(tree, sharding):
    """ShapeDtypeStructs with `sharding`: the restore target for any device count."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def load_variables(source: str, abstract_variables: dict[str, Any], mesh) -> tuple[dict, dict]:
    """Variables of the latest checkpoint in `source` (a workdir or its checkpoints folder).

    Returns (variables laid out replicated on `mesh`, the source's run info).
    """
    workdir = (
        source[: -len("/checkpoints")] if source.rstrip("/").endswith("/checkpoints") else source
    )
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
        raise UserFileError(
            f"config.init_from={source!r} has no checkpoints folder; point it at the workdir of a "
            f"finished training run."
        )
    ckpt = Checkpoints(workdir, read_only=True)
    step = ckpt.latest_step()
    if step is None:
        raise UserFileError(
            f"config.init_from={source!r} holds no complete checkpoint; point it "
            f"at the workdir of a run that saved one."
        )
    info = ckpt.run_info(step)
    target = abstract_like(abstract_variables, parallel.replicated(mesh))
    variables = ckpt.restore_model(step, target)
    ckpt.close()
    return variables, dict(info, step=step)


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Atomic JSON write (a reader never sees half a file)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)


class PreemptionWatcher:
    """Turns SIGTERM and Ctrl-C into 'save at the end of this step and exit cleanly'.

    One process: Python handlers set a flag that the loop reads each step; a second Ctrl-C
    interrupts at once (KeyboardInterrupt), without saving.
    Several processes: JAX's preemption service (started by jax.distributed.initialize)
    already catches SIGTERM and agrees on one step at which every process stops, so that
    all of them take part in the same collective save (Ctrl-C keeps its default there).
    """

    def __init__(self):
        self.requested = False
        self.signal_name = "SIGTERM"
        self._multi = jax.process_count() > 1
        self._previous: dict[int, Any] = {}
        if not self._multi and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now, without saving
        self.requested = True
        self.signal_name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if signum == signal.SIGINT:
            print(
                "\nCtrl-C: saving a checkpoint at the end of this step, then stopping (press "
                "Ctrl-C again to stop without saving).",
                file=sys.stderr,
                flush=True,
            )

    def should_stop(self, step: int) -> bool:
        if self._multi:
            return multihost_utils.reached_preemption_sync_point(step)
        return self.requested

    def close(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
