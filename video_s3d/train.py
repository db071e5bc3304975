"""Data-parallel training: `train_and_evaluate(config, workdir)` and the train step.

The step is one per-device program (`shard_map` over the 1-D mesh axis `batch`, under
`jit`): parameters replicated, batch split. Gradients are averaged with `pmean`;
BatchNorm statistics are either synchronised inside the model (`config.sync_batch_norm`:
the model normalises with statistics pmean-ed over the mesh) or computed per device and
averaged after the step so that every replica holds the same running averages.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from video_s3d import (
    checkpointing,
    evaluate,
    inputs,
    normalization,
    optim,
    parallel,
    recipe_card,
    steps,
    train_state,
    workdirs,
)
from video_s3d.compile_policy import CompilePolicy
from video_s3d.errors import UserError, UserFileError
from video_s3d.metric_writers import MetricWriter, Progress, log
from video_s3d.train_state import TrainState


class NonFiniteLossError(UserError):
    """The loss became NaN or Inf; the message names the step and the last good checkpoint."""


# What training raises for a mistake the user can fix: entry points print the sentence, not a
# traceback. Anything else (a bug here or in a library) keeps its traceback.
USER_ERRORS = (UserError,)


# ----------------------------------------------------------------------- update step
def make_train_step(
    model,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    mesh,
    *,
    num_classes: int,
    label_smoothing: float,
    sync_batch_norm: bool,
    freeze_batch_norm: bool,
    seed: int,
    policy: CompilePolicy = CompilePolicy(),
    input_normalization: normalization.Normalization | None = None,
):
    """jit(shard_map(per-device step)): (state, {'video','label'}) -> (state, metrics),
    compiled by `policy`.

    uint8 videos are normalised inside the step by `input_normalization` (default [-1, 1]).
    """
    base_key = jax.random.key(seed + 1)  # + 1: init used `seed` itself
    input_normalization = input_normalization or normalization.Normalization()

    def per_device_step(state: TrainState, batch: dict[str, jax.Array]):
        video = input_normalization.train_input(batch)  # uint8 -> float, flips, on device
        # Each device draws its own dropout mask; the stream depends only on (seed, step).
        dropout_key = jax.random.fold_in(
            jax.random.fold_in(base_key, state.step), lax.axis_index(parallel.BATCH_AXIS)
        )
        # Differentiate a per-device copy of the replicated params: the gradients are then
        # this device's own, and the one pmean below makes them the global-batch average.
        # (Differentiating the replicated value directly would make JAX psum them.)
        params = lax.pcast(state.params, parallel.BATCH_AXIS, to="varying")

        def loss_fn(params):
            variables = {"params": params, "batch_stats": state.batch_stats}
            if freeze_batch_norm:
                # Fine-tuning with frozen BN: running statistics, no updates (and no dropout).
                logits = model.apply(variables, video, train=False)
                new_stats = state.batch_stats
            else:
                logits, mutated = model.apply(
                    variables,
                    video,
                    train=True,
                    mutable=["batch_stats"],
                    rngs={"dropout": dropout_key},
                )
                new_stats = mutated["batch_stats"]
            loss = optim.cross_entropy(logits, batch["label"], num_classes, label_smoothing)
            return loss, (logits, new_stats)

        (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        grads = parallel.fused_pmean(grads)  # one all-reduce for every gradient
        if not sync_batch_norm and not freeze_batch_norm:
            # Per-device statistics differ; average them so the replicas stay identical.
            new_stats = lax.pmean(new_stats, parallel.BATCH_AXIS)
        new_state = state.apply_gradients(tx, grads, new_stats)
        accuracy = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
        metrics = {
            "loss": lax.pmean(loss, parallel.BATCH_AXIS),
            "accuracy": lax.pmean(accuracy, parallel.BATCH_AXIS),
            "grad_norm": optax.global_norm(grads),
            "learning_rate": schedule(state.step),
        }
        return new_state, metrics

    step = jax.shard_map(
        per_device_step, mesh=mesh, in_specs=(P(), P(parallel.BATCH_AXIS)), out_specs=(P(), P())
    )
    return policy.jit(step, donate_argnums=(0,))


# ------------------------------------------------------------ precise BatchNorm statistics
def make_batch_stats_step(
    model,
    mesh,
    *,
    sync_batch_norm: bool,
    policy: CompilePolicy = CompilePolicy(),
    input_normalization: normalization.Normalization | None = None,
):
    """jit(shard_map): (variables, clips) -> this batch's BatchNorm statistics, every layer.

    BN keeps `ra = m * ra + (1 - m) * batch`. Running the train-mode forward pass from ra = 0
    and from ra = 1 gives m = ra_1 - ra_0 and batch = ra_0 / (1 - m) for each statistic, for
    whatever momentum each layer uses (the forward pass itself normalises with the batch's
    own statistics, so it is the same in both runs).
    """
    input_normalization = input_normalization or normalization.Normalization()

    def per_device(variables, video):
        # A training batch {'video', 'flip'} is mirrored as in the train step; or bare clips.
        video = (
            input_normalization.train_input(video)
            if isinstance(video, dict)
            else input_normalization.model_input(video)
        )

        def updated_from(value):
            start = jax.tree.map(lambda s: jnp.full_like(s, value), variables["batch_stats"])
            _, mutated = model.apply(
                {"params": variables["params"], "batch_stats": start},
                video,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": jax.random.key(0)},
            )
            return mutated["batch_stats"]

        low, high = updated_from(0.0), updated_from(1.0)
        batch = jax.tree.map(lambda lo, hi: lo / (1.0 - (hi - lo)), low, high)
        if not sync_batch_norm:
            batch = lax.pmean(batch, parallel.BATCH_AXIS)
        return batch

    return policy.jit(
        jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(parallel.BATCH_AXIS)), out_specs=P())
    )


def recompute_batch_norm(
    state: TrainState, stats_step, config, mesh, local_batch: int, batches=None
) -> TrainState:
    """Replaces the running averages by the average over `config.precise_bn_batches` batches.

    With TF-Slim's BN decay 0.999 the running averages of a short run still remember their
    initial values (after 500 steps 61% of the way); evaluation normalises with them, so
    short runs would be judged on stale statistics. The batches come from a separate,
    freshly started training stream (seed + 1): the same batches every time, and the
    training stream is not disturbed, so resuming stays exact. `batches`: another task's
    stream of such batches (detection's).
    """
    if not jax.tree.leaves(state.batch_stats):
        return state
    stream = batches or inputs.train_iterator(
        config.data,
        local_batch=local_batch,
        seed=config.seed + 1,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    total = None
    for _ in range(int(config.precise_bn_batches)):
        batch = next(stream)
        clips = {key: batch[key] for key in ("video", "flip") if key in batch}
        stats = stats_step(state.variables, parallel.host_to_global(clips, mesh))
        total = stats if total is None else jax.tree.map(jnp.add, total, stats)
    averaged = jax.jit(lambda t: jax.tree.map(lambda x: x / config.precise_bn_batches, t))(total)
    return state.replace(batch_stats=averaged)


# --------------------------------------------------------------------------- helpers
def validate_config(config: ml_collections.ConfigDict) -> None:
    """Cheap checks a user can trip, before any data or model is touched."""
    for field in ("num_train_steps", "log_every_steps", "checkpoint_every_steps"):
        if int(config[field]) <= 0:
            raise UserError(f"config.{field}={config[field]} must be a positive integer.")
    if int(config.eval_every_steps) < 0:
        raise UserError(
            f"config.eval_every_steps={config.eval_every_steps} must be >= 0 "
            f"(0 evaluates only at the end)."
        )
    if config.optim.name not in optim.OPTIMIZERS:
        raise UserError(
            f"config.optim.name={config.optim.name!r} is unknown; use one of {optim.OPTIMIZERS}."
        )
    if config.optim.schedule not in optim.SCHEDULES:
        raise UserError(
            f"config.optim.schedule={config.optim.schedule!r} is unknown; use one of "
            f"{optim.SCHEDULES}."
        )


def run_info(
    config: ml_collections.ConfigDict, num_classes: int, class_names=None
) -> dict[str, Any]:
    """What a checkpoint records about its run; class names let `predict` print labels."""
    info = {
        "model": config.model.name,
        "num_classes": int(num_classes),
        "dataset": config.data.name,
    }
    if class_names is not None:
        info["class_names"] = [str(name) for name in class_names]
    return info


def _warn_if_normalisation_differs(source_dir: str, config, is_main: bool) -> None:
    """Weights trained on other pixel statistics (e.g. torchvision's) start worse on ours."""
    path = os.path.join(source_dir, "config.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        source = normalization.from_config(json.load(f).get("data", {}))
    ours = normalization.from_config(config.data)
    if source != ours:
        log(
            f"warning: {source_dir} was trained on inputs normalised with mean {source.mean}, "
            f"std {source.std}, this run uses mean {ours.mean}, std {ours.std}; pass "
            f"--config.data.input_mean and --config.data.input_std to match them.",
            is_main,
        )


def start_state(
    ckpt, start_step, model, tx, config, mesh, train_iter, initialise, is_main: bool
) -> TrainState:
    """The state a run starts from: the checkpoint at `start_step` (restoring `train_iter`'s
    position too), else a fresh state seeded by `config.seed`, passed through
    `initialise(state)` when `config.init_from` names a run to start from. Shared by the
    classification and detection trainers."""
    if start_step is not None:
        state = ckpt.restore(
            start_step, train_state.abstract_state(model, tx, config, mesh), train_iter
        )
        log(f"resumed from {ckpt.directory} at step {start_step}", is_main)
        return state
    state = train_state.create_state(model, tx, config, mesh, jax.random.key(config.seed))
    return initialise(state) if config.init_from else state


def init_from_checkpoint(state: TrainState, config, model, mesh, num_classes: int, is_main: bool):
    """Backbone (every matching leaf) from `config.init_from`; mismatched leaves (the head) stay fresh."""
    source_dir, _ = steps.split_source(config.init_from)  # DIR[@best|latest|N], checkpoints/<N>
    source_info = (
        checkpointing.Checkpoints(source_dir, read_only=True).run_info()
        if os.path.isdir(os.path.join(source_dir, "checkpoints"))
        else None
    )
    if source_info is not None and source_info.get("model") != config.model.name:
        raise UserError(
            f"config.init_from={config.init_from!r} holds model {source_info.get('model')!r} but "
            f"config.model.name={config.model.name!r}; fine-tune the same architecture."
        )
    source_classes = int(source_info["num_classes"]) if source_info else num_classes
    source_model = (
        model if source_classes == num_classes else train_state.create_model(config, source_classes)
    )
    source_abstract = train_state.abstract_variables(source_model, config, mesh)
    source, loaded_info = steps.load_variables(config.init_from, source_abstract, mesh)
    _warn_if_normalisation_differs(source_dir, config, is_main)

    fresh = {"params": state.params, "batch_stats": state.batch_stats}
    source_leaves = dict(jax.tree_util.tree_leaves_with_path(source))
    reinitialised = []

    def pick(path, leaf):
        old = source_leaves.get(path)
        if old is not None and old.shape == leaf.shape:
            return old
        reinitialised.append(jax.tree_util.keystr(path))
        return leaf

    merged = jax.tree_util.tree_map_with_path(pick, fresh)
    log(
        f"fine-tuning from {source_dir} at step {loaded_info['step']} ({source_classes} classes "
        f"-> {num_classes}); "
        f"freshly initialised: {', '.join(reinitialised) or 'nothing'}",
        is_main,
    )
    return state.replace(
        params=merged["params"], batch_stats=merged["batch_stats"], opt_state=state.opt_state
    )


def check_init_from(config: ml_collections.ConfigDict, workdir: str) -> None:
    """One sentence, before any data or model work, when config.init_from names nothing
    (a run that resumes from its own checkpoints does not read it)."""
    init_from = (config.get("init_from") or "").rstrip("/")
    if init_from.endswith("/checkpoints"):
        init_from = init_from[: -len("/checkpoints")]
    resuming = os.path.isdir(os.path.join(workdir, "checkpoints")) and os.listdir(
        os.path.join(workdir, "checkpoints")
    )
    if init_from and not resuming and not os.path.isdir(os.path.join(init_from, "checkpoints")):
        hint = config.get("init_hint") or "pass the workdir of a finished run"
        raise UserFileError(f"config.init_from={init_from!r} holds no checkpoints; {hint}.")


def open_checkpoints(workdir: str, config, meta: dict[str, Any], is_main: bool):
    """The workdir's checkpoints, checked to be this run's (`meta`), with config.json written
    and any change of config on resuming recorded and logged."""
    ckpt = checkpointing.Checkpoints(
        workdir, keep=config.keep_checkpoints, async_save=config.async_checkpointing
    )
    ckpt.check_same_run(meta)
    saved_step = ckpt.latest_step()
    # Before config.json is rewritten: it must keep describing the checkpoints.
    changes = workdirs.check_resume(workdir, config, saved_step) if saved_step is not None else {}
    if is_main:
        workdirs.write_config(workdir, config, changes, saved_step)
    if changes:
        log(
            f"resuming with a changed config (recorded in {workdirs.CHANGES_NAME}): "
            f"{workdirs.describe_changes(changes)}",
            is_main,
        )
    return ckpt


def _mean_metrics(window: list[tuple[int, dict[str, np.ndarray]]]) -> dict[str, float]:
    keys = window[-1][1].keys()
    averaged = {k: float(np.mean([m[k] for _, m in window])) for k in keys}
    averaged["learning_rate"] = float(window[-1][1]["learning_rate"])
    return averaged


def log_train_window(window: list, step: int, progress, writer, batch_size: int) -> None:
    """The window's mean training metrics and the throughput: one progress line and
    train/ scalars; the window is emptied."""
    averaged = _mean_metrics(window)
    rates = progress.measure(step, batch_size)
    progress.print_line(step, averaged, rates)
    if math.isfinite(rates["clips_per_sec"]):
        averaged["clips_per_sec"] = rates["clips_per_sec"]
    writer.write_scalars(step, averaged, prefix="train/")
    window.clear()


# ----------------------------------------------------------------------- the loop
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains (resuming from `workdir` if it holds a checkpoint), evaluates, writes result.json.

    One run per workdir: a second one stops at once (`workdirs.WorkdirLock`).
    Returns the final state (this process's view of the replicated arrays).
    """
    validate_config(config)
    workdir = workdirs.usable_workdir(workdir)
    with workdirs.WorkdirLock(workdir, enabled=jax.process_index() == 0):
        if config.get("task", "classification") == "detection":
            from video_s3d.detection import trainer  # its own model, data and metrics

            return trainer.train_and_evaluate(config, workdir)
        return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    is_main = jax.process_index() == 0
    if "recipe" in config:  # the resolved recipe beside the paper's, before any work
        log(recipe_card.format_card(config), is_main)
    check_init_from(config, workdir)
    mesh = parallel.make_mesh()
    parallel.check_global_batch(config.batch_size, mesh, "config.batch_size")
    parallel.check_global_batch(config.eval_batch_size, mesh, "config.eval_batch_size")
    inputs.ensure_ready(config.data)
    info = inputs.dataset_info(config.data)
    num_classes = int(info.num_classes)
    # DMVR shards are counted, their labels checked, on first use: the eval split's now, so
    # that a bad label there stops the run before training rather than at its evaluation.
    info.split_sizes.get(config.data.eval_split)
    model = train_state.create_model(config, num_classes)

    meta = run_info(config, num_classes, info.class_names)
    ckpt = open_checkpoints(workdir, config, meta, is_main)

    total_steps = int(config.num_train_steps)
    schedule = optim.make_schedule(config.optim, total_steps)
    tx = optim.make_optimizer(config.optim, total_steps)
    local_batch = parallel.local_batch_size(config.batch_size, mesh)
    train_iter = inputs.train_iterator(
        config.data,
        local_batch=local_batch,
        seed=config.seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )

    # ------------------------------------------------------------ state: resume / init
    start_step = ckpt.latest_step()
    state = start_state(
        ckpt,
        start_step,
        model,
        tx,
        config,
        mesh,
        train_iter,
        lambda fresh: init_from_checkpoint(fresh, config, model, mesh, num_classes, is_main),
        is_main,
    )
    step = int(parallel.replicated_to_host(state.step))
    num_params = train_state.count_params(state.params)
    log(
        f"{config.model.name}: {num_params:,} params, {num_classes} classes, {mesh.size} "
        f"device{'s' if mesh.size > 1 else ''} "
        f"({jax.process_count()} process{'es' if jax.process_count() > 1 else ''}), global batch {config.batch_size}, "
        f"steps {step}->{total_steps}",
        is_main,
    )

    policy = CompilePolicy.from_config(config)  # every program of this run, compiled alike
    train_step = make_train_step(
        model,
        tx,
        schedule,
        mesh,
        num_classes=num_classes,
        label_smoothing=float(config.label_smoothing),
        sync_batch_norm=bool(config.sync_batch_norm),
        freeze_batch_norm=bool(config.freeze_batch_norm),
        seed=int(config.seed),
        policy=policy,
        input_normalization=normalization.from_config(config.data),
    )
    eval_step = evaluate.make_eval_step(model, mesh, policy, normalization.from_config(config.data))
    stats_step = make_batch_stats_step(
        model,
        mesh,
        sync_batch_norm=bool(config.sync_batch_norm),
        policy=policy.with_fast(),
        input_normalization=normalization.from_config(config.data),
    )
    writer = MetricWriter(workdir, enabled=is_main, start_step=step)
    watcher = checkpointing.PreemptionWatcher()
    progress = Progress(total_steps, step, enabled=is_main)

    window: list[tuple[int, Any]] = []  # (step, device metrics) not yet fetched
    log_window: list[tuple[int, dict]] = []
    last_eval: tuple[int, dict[str, float], dict] | None = None
    compiled = False  # the first step compiles: throughput is timed from after it

    def fetch_window() -> None:
        """Pull pending metrics to the host; stop at the first non-finite loss."""
        for s, device_metrics in window:
            host = {k: float(v) for k, v in parallel.replicated_to_host(device_metrics).items()}
            if not math.isfinite(host["loss"]):
                last_good = ckpt.latest_step()
                where = (
                    f"step {last_good} in {ckpt.directory}"
                    if last_good is not None
                    else "none (nothing was saved yet)"
                )
                raise NonFiniteLossError(
                    f"The training loss became {host['loss']} at step {s}; the last good checkpoint "
                    f"is {where}: lower config.optim.learning_rate or set config.optim.grad_clip_norm "
                    f"and resume."
                )
            log_window.append((s, host))
        window.clear()

    try:
        while step < total_steps:
            batch = next(train_iter)
            batch = parallel.host_to_global(
                {key: batch[key] for key in ("video", "label", "flip") if key in batch}, mesh
            )
            state, metrics = train_step(state, batch)
            step += 1
            window.append((step, metrics))
            if not compiled:
                jax.block_until_ready(metrics)
                progress.restart(step)
                compiled = True

            final = step == total_steps
            stop = watcher.should_stop(step) and not final
            do_log = step % config.log_every_steps == 0 or final or stop
            do_eval = final or (config.eval_every_steps and step % config.eval_every_steps == 0)
            do_save = final or stop or step % config.checkpoint_every_steps == 0
            if not (do_log or do_eval or do_save):
                continue

            fetch_window()  # before saving: never checkpoint NaN parameters
            progress.pause()  # evaluation and checkpointing are not training time
            if do_log and log_window:
                log_train_window(log_window, step, progress, writer, config.batch_size)
            eval_metrics = None
            if do_eval and config.get("precise_bn_batches", 0) and not config.freeze_batch_norm:
                state = recompute_batch_norm(state, stats_step, config, mesh, local_batch)
            if final:
                # Saved before the final evaluation: an evaluation that fails (or is killed)
                # must not lose the trained weights; its metrics join the step afterwards.
                ckpt.save(step, state, meta, train_iter)
                ckpt.wait()  # on disk, not in flight, before the evaluation starts
            if do_eval:
                eval_metrics, extras = evaluate.evaluate_variables(
                    config, model, state.variables, mesh, info, eval_step=eval_step, is_main=is_main
                )
                evaluate.report(
                    workdir, writer, step, eval_metrics, extras, info.class_names, is_main
                )
                last_eval = (step, eval_metrics, extras)
            best = (
                {checkpointing.BEST_METRIC: eval_metrics[checkpointing.BEST_METRIC]}
                if eval_metrics
                else None
            )
            if do_save and not final:
                ckpt.save(step, state, meta, train_iter, metrics=best)
            elif final and best:
                ckpt.record_metrics(step, best)
            if stop:
                log(
                    f"{watcher.signal_name}: saved step {step} to {ckpt.directory}; rerun the "
                    f"same command to resume.",
                    is_main,
                )
                break
            progress.resume()

        train_clips_per_sec = progress.average_rate(step, config.batch_size)
        result_path = os.path.join(workdir, "result.json")
        if step >= total_steps and last_eval is None and not os.path.exists(result_path):
            # Trained to the end earlier but stopped before writing the result: evaluate now.
            eval_metrics, extras = evaluate.evaluate_variables(
                config, model, state.variables, mesh, info, eval_step=eval_step, is_main=is_main
            )
            evaluate.report(workdir, writer, step, eval_metrics, extras, info.class_names, is_main)
            last_eval = (step, eval_metrics, extras)
            if step in ckpt.all_steps() and not ckpt.manager.metrics(step):
                ckpt.record_metrics(
                    step, {checkpointing.BEST_METRIC: eval_metrics[checkpointing.BEST_METRIC]}
                )
        if step >= total_steps and last_eval is not None and is_main:
            eval_step_done, eval_metrics, extras = last_eval
            evaluate.write_result(
                workdir,
                config=config,
                info=info,
                step=eval_step_done,
                metrics=eval_metrics,
                extras=extras,
                num_params=num_params,
                train_clips_per_sec=train_clips_per_sec,
            )
            log(f"wrote {result_path}")
        elif step >= total_steps:
            log(f"{workdir} was already trained to step {step}; see {result_path}", is_main)
    finally:
        watcher.close()
        ckpt.close()
        writer.close()
    return state
