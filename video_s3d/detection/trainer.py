"""`config.task = "detection"` in `video_s3d.main`: the action detector trained and evaluated
with classification's machinery (train.py dispatches here inside its workdir lock).

Shared with classification: config validation, `init_from` checks, the replicated TrainState
and its jit-initialisation, optax optimisers and schedules, orbax checkpoints with the data
iterator's state (exact resume), config.json and its resume checks, metrics.jsonl/TensorBoard,
progress lines, SIGTERM/Ctrl-C save-and-stop, precise BatchNorm statistics and the mesh.
Specific here: the model (`detection.model.ActionDetector` on the zoo trunk `config.model`),
the key-frame input pipeline (`detection.data`), the loss, and evaluation (frame-mAP@0.5,
video-mAP@0.2/0.5 over `config.data.eval_split`), which result.json reports.

Data parallelism as classification's: the train step is `shard_map` over the mesh axis
`batch` (params replicated, batch split, one fused gradient all-reduce; BatchNorm statistics
synchronised inside the trunk or averaged after the step). Evaluation splits each batch of
clips over the mesh too; every process walks the whole eval split in the same order and keeps
its own rows, so no host gathers anything (redundant across hosts, fine at JHMDB/UCF101-24
sizes).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import math
import os

import jax
import ml_collections
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from video_s3d import (
    checkpointing,
    normalization,
    optim,
    parallel,
    steps,
    train,
    train_state,
)
from video_s3d.compile_policy import CompilePolicy
from video_s3d.detection import data, draw, training
from video_s3d.detection.model import ActionDetector, detection_loss, load_trunk, postprocess
from video_s3d.errors import UserError
from video_s3d.metric_writers import MetricWriter, Progress, format_duration, log

TASK = "detection"
HEADLINE = "frame_map@0.5"  # what checkpointing's best-step policy ranks detection runs by


def is_detection(config: ml_collections.ConfigDict) -> bool:
    return config.get("task", "classification") == TASK


def create_model(config: ml_collections.ConfigDict, num_classes: int) -> ActionDetector:
    """The detector of `config.detector` on the zoo trunk `config.model` (its fields but the name
    are the trunk's overrides, as `train_state.create_model` passes them)."""
    overrides = {key: value for key, value in config.model.to_dict().items() if key != "name"}
    overrides["bn_axis_name"] = parallel.BATCH_AXIS if config.sync_batch_norm else None
    detector = config.detector.to_dict()
    for key in ("anchor_sizes", "aspect_ratios"):
        detector[key] = tuple(detector[key])
    return ActionDetector(config.model.name, num_classes, trunk_overrides=overrides, **detector)


# ----------------------------------------------------------------------- programs
def make_train_step(model, tx, schedule, mesh, *, sync_batch_norm: bool, policy, norm):
    """jit(shard_map(per-device step)): (state, batch) -> (state, metrics), as train.py's."""

    def per_device_step(state: train_state.TrainState, batch):
        # A per-device copy of the replicated params: its gradients are this device's own.
        params = lax.pcast(state.params, parallel.BATCH_AXIS, to="varying")

        def loss_fn(params):
            outputs, mutated = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                norm.model_input(batch["video"]),
                train=True,
                extra_rois=batch["gt_boxes"],
                extra_rois_valid=batch["gt_valid"],
                mutable=["batch_stats"],
            )
            loss, terms = detection_loss(
                outputs, batch["gt_boxes"], batch["gt_labels"], batch["gt_valid"]
            )
            return loss, (terms, mutated["batch_stats"])

        (loss, (terms, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        grads = parallel.fused_pmean(grads)
        if not sync_batch_norm:
            batch_stats = lax.pmean(batch_stats, parallel.BATCH_AXIS)
        new_state = state.apply_gradients(tx, grads, batch_stats)
        scalars = lax.pmean({"loss": loss, **terms}, parallel.BATCH_AXIS)
        scalars.update(grad_norm=optax.global_norm(grads), learning_rate=schedule(state.step))
        return new_state, scalars

    step = jax.shard_map(
        per_device_step, mesh=mesh, in_specs=(P(), P(parallel.BATCH_AXIS)), out_specs=(P(), P())
    )
    return policy.jit(step, donate_argnums=(0,))


def make_detect(model, mesh, *, max_detections: int, policy, norm):
    """detect(params, batch_stats, clips uint8 [B, ...] on the host) -> postprocess's dict of
    this process's rows, numpy; the batch is split over the mesh (`training.detect_videos`)."""

    def per_device(params, batch_stats, clips):
        outputs = model.apply({"params": params, "batch_stats": batch_stats}, norm(clips))
        return postprocess(outputs, max_detections=max_detections)

    program = policy.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(P(), P(), P(parallel.BATCH_AXIS)),
            out_specs=P(parallel.BATCH_AXIS),
        )
    )

    def detect(params, batch_stats, clips):
        found = program(params, batch_stats, parallel.host_to_global(clips, mesh))
        return parallel.global_to_host(found, mesh)

    return detect


# ----------------------------------------------------------------------- evaluation
def evaluate_detector(config, state, detect, info: data.DetectionInfo, mesh, is_main: bool):
    """Frame- and video-mAP of `state` on config.data.eval_split, with a progress line."""
    total = data.num_eval_videos(config.data, info)
    started, seen = datetime.datetime.now(), [0, 0]

    def progress(frames: int) -> None:
        seen[0] += 1
        seen[1] += frames
        if is_main and (seen[0] % max(total // 10, 1) == 0 or seen[0] == total):
            elapsed = (datetime.datetime.now() - started).total_seconds()
            eta = elapsed / seen[0] * (total - seen[0])
            print(
                f"  eval {seen[0]}/{total} videos, {seen[1] / max(elapsed, 1e-9):.1f} frames/s, "
                f"ETA {format_duration(eta)}",
                flush=True,
            )

    found = training.evaluate(
        detect,
        state,
        data.eval_videos(config.data, config.data.get("max_eval_videos")),
        info.num_classes,
        int(config.data.num_frames),
        frame_stride=int(config.data.eval_frame_stride),
        batch_size=parallel.local_batch_size(config.eval_batch_size, mesh),
        on_video=progress,
        stride=int(config.data.stride),
    )
    seconds = (datetime.datetime.now() - started).total_seconds()
    scalars = {k: float(v) for k, v in found.items() if k != "frame_ap@0.5"}
    scalars["eval_frames_per_sec"] = seen[1] / max(seconds, 1e-9)
    per_class = {
        name: (None if np.isnan(ap) else float(ap))
        for name, ap in zip(info.class_names, found["frame_ap@0.5"])
    }
    return scalars, per_class


def write_result(workdir, config, info, step, scalars, per_class, num_params, clips_per_sec):
    """result.json; a re-evaluation (no throughput of its own) keeps the training run's."""
    path = os.path.join(workdir, "result.json")
    if clips_per_sec is None and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            clips_per_sec = json.load(f).get("train_clips_per_sec")
    result = {
        "task": TASK,
        "model": config.model.name,
        "dataset": config.data.name,
        "dataset_version": info.version,
        "num_classes": info.num_classes,
        "num_params": int(num_params),
        "step": int(step),
        "num_frames": int(config.data.num_frames),
        "crop_size": int(config.data.crop_size),
        "device": f"{jax.device_count()}x {jax.devices()[0].device_kind}",
        "train_clips_per_sec": clips_per_sec,
        "metrics": scalars,
        "per_class_frame_ap@0.5": per_class,
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    checkpointing.write_json(path, result)
    return result


# ----------------------------------------------------------------------- init_from
def trunk_from_classification_run(state, config, model, mesh, is_main: bool):
    """`state` with its trunk from `config.init_from`, a classification run of the same zoo
    model (its classifier above `config.detector.feature_layer` is dropped)."""
    source_dir, _ = steps.split_source(config.init_from)
    with contextlib.closing(checkpointing.Checkpoints(source_dir, read_only=True)) as opened:
        source_info = opened.run_info() or {}
    if source_info.get("task", "classification") != "classification":
        raise UserError(
            f"config.init_from={config.init_from!r} is a {source_info['task']} run; initialise "
            f"the trunk from a classification run (e.g. Kinetics) of {config.model.name}."
        )
    if source_info.get("model") != config.model.name:
        raise UserError(
            f"config.init_from={config.init_from!r} holds model {source_info.get('model')!r} but "
            f"config.model.name={config.model.name!r}; use the classification run's model."
        )
    classifier = train_state.create_model(config, int(source_info["num_classes"]))
    abstract = train_state.abstract_variables(classifier, config, mesh)
    source, loaded = steps.load_variables(config.init_from, abstract, mesh)
    variables = load_trunk(state.variables, source)
    log(
        f"trunk from {source_dir} at step {loaded['step']}; detection layers freshly initialised",
        is_main,
    )
    return state.replace(params=variables["params"], batch_stats=variables["batch_stats"])


# ----------------------------------------------------------------------- the loop
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str):
    """Trains (resuming from `workdir`), evaluates, writes result.json; `train.train_and_evaluate`
    calls this for detection configs after validating them and taking the workdir lock."""
    is_main = jax.process_index() == 0
    train.check_init_from(config, workdir)
    mesh = parallel.make_mesh()
    parallel.check_global_batch(config.batch_size, mesh, "config.batch_size")
    parallel.check_global_batch(config.eval_batch_size, mesh, "config.eval_batch_size")
    data.ensure_ready(config.data)
    info = data.dataset_info(config.data)
    model = create_model(config, info.num_classes)
    norm = normalization.from_config(config.data)

    meta = dict(train.run_info(config, info.num_classes, info.class_names), task=TASK)
    ckpt = train.open_checkpoints(workdir, config, meta, is_main)
    saved_step = ckpt.latest_step()

    total_steps = int(config.num_train_steps)
    schedule = optim.make_schedule(config.optim, total_steps)
    tx = optim.make_optimizer(config.optim, total_steps)
    local_batch = parallel.local_batch_size(config.batch_size, mesh)

    stream = functools.partial(  # the training stream of a seed, this process's share
        data.train_iterator,
        config.data,
        local_batch=local_batch,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    train_iter = stream(seed=config.seed)
    state = train.start_state(
        ckpt,
        saved_step,
        model,
        tx,
        config,
        mesh,
        train_iter,
        lambda fresh: trunk_from_classification_run(fresh, config, model, mesh, is_main),
        is_main,
    )
    step = int(parallel.replicated_to_host(state.step))
    num_params = train_state.count_params(state.params)
    log(
        f"detector on {config.model.name} ({config.detector.feature_layer}): {num_params:,} "
        f"params, {info.num_classes} classes, {mesh.size} device(s), global batch "
        f"{config.batch_size}, steps {step}->{total_steps}",
        is_main,
    )

    policy = CompilePolicy.from_config(config)  # every program of this run, compiled alike
    train_step = make_train_step(
        model,
        tx,
        schedule,
        mesh,
        sync_batch_norm=bool(config.sync_batch_norm),
        policy=policy,
        norm=norm,
    )
    detect = make_detect(
        model,
        mesh,
        max_detections=int(config.max_detections),
        policy=policy,
        norm=norm,
    )
    stats_step = train.make_batch_stats_step(
        model,
        mesh,
        sync_batch_norm=bool(config.sync_batch_norm),
        policy=policy.with_fast(),
        input_normalization=norm,
    )
    writer = MetricWriter(workdir, enabled=is_main, start_step=step)
    watcher = checkpointing.PreemptionWatcher()
    progress = Progress(total_steps, step, enabled=is_main)
    pending, window = [], []
    last_eval, compiled = None, False

    def precise_batch_norm():
        nonlocal state
        if config.precise_bn_batches:
            state = train.recompute_batch_norm(
                state, stats_step, config, mesh, local_batch, batches=stream(seed=config.seed + 1)
            )

    def evaluate_now():
        scalars, per_class = evaluate_detector(config, state, detect, info, mesh, is_main)
        writer.write_scalars(step, scalars, prefix="eval/")
        shown = "  ".join(f"{k} {scalars[k]:.3f}" for k in ("frame_map@0.5", "video_map@0.2"))
        log(f"eval @ step {step}: {shown}  video_map@0.5 {scalars['video_map@0.5']:.3f}", is_main)
        if config.get("eval_sheet_videos", 0):  # every process: detect runs over the mesh
            videos = list(data.eval_videos(config.data, config.eval_sheet_videos))
            sheet = draw.video_sheet(
                detect,
                state,
                videos,
                info.class_names,
                clip_length=int(config.data.num_frames),
                stride=int(config.data.stride),
                batch_size=parallel.local_batch_size(config.eval_batch_size, mesh),
            )
            if is_main:
                draw.save_png(sheet, os.path.join(workdir, "detections.png"))
        return scalars, per_class

    result_path = os.path.join(workdir, "result.json")

    def needs_result() -> bool:
        """A run trained to the end without an evaluation now and no result.json (stopped
        between its last step and the result): it evaluates once more."""
        return last_eval is None and not os.path.exists(result_path)

    def finish(evaluated) -> None:
        if evaluated is None:
            log(f"{workdir} was already trained to step {step}; see {result_path}", is_main)
        elif is_main:
            clips_per_sec = progress.average_rate(step, config.batch_size)
            write_result(workdir, config, info, *evaluated, num_params, clips_per_sec)
            log(f"wrote {result_path}")

    try:
        while step < total_steps:
            state, scalars = train_step(state, parallel.host_to_global(next(train_iter), mesh))
            step += 1
            pending.append((step, scalars))
            if not compiled:  # the first step compiles: time from after it
                jax.block_until_ready(scalars)
                progress.restart(step)
                compiled = True
            final = step == total_steps
            stop = watcher.should_stop(step) and not final
            logging_now = final or stop or step % config.log_every_steps == 0
            evaluating = final or bool(
                config.eval_every_steps and step % config.eval_every_steps == 0
            )
            saving = final or stop or step % config.checkpoint_every_steps == 0
            if not (logging_now or evaluating or saving):
                continue
            for at, device_scalars in pending:  # to the host; never save after a NaN
                host = {k: float(v) for k, v in parallel.replicated_to_host(device_scalars).items()}
                if not math.isfinite(host["loss"]):
                    raise train.NonFiniteLossError(
                        f"The training loss became {host['loss']} at step {at}; the last good "
                        f"checkpoint is step {ckpt.latest_step()} in {ckpt.directory}: lower "
                        f"config.optim.learning_rate and resume."
                    )
                window.append((at, host))
            pending.clear()
            progress.pause()
            if logging_now and window:
                train.log_train_window(window, step, progress, writer, config.batch_size)
            if evaluating:  # before the final save: checkpoints hold the statistics evaluated
                precise_batch_norm()
            if final:  # saved before the evaluation: a failing one must not lose the weights
                ckpt.save(step, state, meta, train_iter)
                ckpt.wait()
            best = None
            if evaluating:
                last_eval = (step, *evaluate_now())
                best = {HEADLINE: last_eval[1][HEADLINE]}
            if final and best:
                ckpt.record_metrics(step, best)
            elif saving and not final:
                ckpt.save(step, state, meta, train_iter, metrics=best)
            if stop:
                log(f"{watcher.signal_name}: saved step {step}; rerun to resume.", is_main)
                break
            progress.resume()

        if step >= total_steps:
            if needs_result():
                precise_batch_norm()
                last_eval = (step, *evaluate_now())
            finish(last_eval)
    finally:
        watcher.close()
        ckpt.close()
        writer.close()
    return state


# ----------------------------------------------------------------------- --mode=eval
def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str, step="latest") -> dict:
    """`video_s3d.main --mode=eval` for a detection run: one checkpoint (`step`: latest, best or
    a number) evaluated on config.data.eval_split; result.json rewritten with its numbers."""
    is_main = jax.process_index() == 0
    mesh = parallel.make_mesh()
    parallel.check_global_batch(config.eval_batch_size, mesh, "config.eval_batch_size")
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
        raise UserError(
            f"{workdir} holds no checkpoint to evaluate; train first with "
            f"--mode=train --workdir={workdir}."
        )
    with contextlib.closing(checkpointing.Checkpoints(workdir, read_only=True)) as ckpt:
        chosen, how = steps.resolve(ckpt, steps.parse(step), workdir)
        data.ensure_ready(config.data)
        info = data.dataset_info(config.data)
        ckpt.check_same_run({"model": config.model.name, "num_classes": info.num_classes})
        model = create_model(config, info.num_classes)
        abstract = train_state.abstract_variables(model, config, mesh)
        variables = ckpt.restore_model(chosen, abstract)
    log(f"evaluating the detector at step {chosen} ({how}) on {config.data.eval_split}", is_main)
    norm = normalization.from_config(config.data)
    detect = make_detect(
        model,
        mesh,
        max_detections=int(config.max_detections),
        policy=CompilePolicy.from_config(config),
        norm=norm,
    )
    state = training.TrainState(variables["params"], variables["batch_stats"], None)
    scalars, per_class = evaluate_detector(config, state, detect, info, mesh, is_main)
    log(f"eval @ step {chosen}: " + "  ".join(f"{k} {v:.3f}" for k, v in scalars.items()), is_main)
    if not is_main:
        return {}
    params = train_state.count_params(variables["params"])
    return write_result(workdir, config, info, chosen, scalars, per_class, params, None)
