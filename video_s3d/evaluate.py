"""Evaluation: clip- and video-level top-1/top-5, time reversal, per-class, confusion.

Every clip (clips x crops views of each video) goes through the model once; logits are
summed per `video_index` on the host (padding rows carry mask=False and are dropped) and
averaged, so video-level accuracy is the usual multi-view test protocol. With the frames
reversed in time the same numbers show how much a model relies on the arrow of time.

For datasets whose classes come in time-reversed partner pairs (`reversal_partner`), the
pairwise reversal accuracy asks only "c or partner(c)?": for each video of class c, is the
logit of c above the logit of its partner. Chance is 50%; a frame-order-blind model (I2D)
stays there however well it knows the pair.

`result.json` (read by the speed/accuracy table script) holds:
  model, dataset, num_classes, num_params, step, num_frames, crop_size,
  device (e.g. "8x TPU v4"), train_clips_per_sec, eval_clips_per_sec,
  metrics: {clip_top1, clip_top5, video_top1, video_top5, reversed_video_top1,
            pairwise_reversal_accuracy (only with partners), num_videos, num_clips},
  per_class_accuracy: {class_name: video-level accuracy},
  eval_protocols: {protocol: its metrics, headline: bool} for every protocol in
            config.data.eval_protocols ("all_frames": every frame of each video in one pass at a
            centre crop, the paper's; "multi_clip": the windows above), the first the headline,
  all_frames_cost: {frames: 250, gmacs, activation_bytes_estimate, seconds_estimate} of one
            10 s video at 25 fps (video_s3d.cost; the seconds scale this run's measured
            whole-video throughput by multiply-adds), updated (UTC time).
"""

from __future__ import annotations

import datetime
import functools
import io
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import PartitionSpec as P

from video_s3d import checkpointing, inputs, normalization, parallel, steps, train_state
from video_s3d.compile_policy import CompilePolicy
from video_s3d.errors import UserError, UserFileError
from video_s3d.metric_writers import MetricWriter, format_duration, log

# Seconds between evaluation progress lines (clips done, rate, ETA).
EVAL_PROGRESS_SECONDS = 10.0


# --------------------------------------------------------------------------- metrics
def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Bool per row: is the label among the k largest logits (k clipped to #classes)."""
    k = min(k, logits.shape[-1])
    topk = np.argsort(-logits, axis=-1, kind="stable")[:, :k]
    return (topk == labels[:, None]).any(axis=-1)


def per_class_accuracy(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy per true class; NaN for classes with no example."""
    totals = np.bincount(labels, minlength=num_classes).astype(np.float64)
    hits = np.bincount(labels[predictions == labels], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / totals, np.nan)


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def pairwise_reversal_accuracy(
    logits: np.ndarray, labels: np.ndarray, partner: Sequence[int | None] | None
) -> float | None:
    """Among videos whose class has a reversal partner: fraction with logit[c] > logit[partner]."""
    if partner is None:
        return None
    partner_of = np.array([-1 if p is None or p < 0 else int(p) for p in partner])
    paired = (partner_of[labels] >= 0) & (partner_of[labels] != labels)
    if not paired.any():
        return None
    rows = np.nonzero(paired)[0]
    own = logits[rows, labels[rows]]
    other = logits[rows, partner_of[labels[rows]]]
    return float(np.mean(own > other))


class VideoAccumulator:
    """Sums logits per video and counts clip-level hits, one host-local batch at a time."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self._sums: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}
        self._labels: dict[int, int] = {}
        self.clips = 0
        self.clip_top1 = 0
        self.clip_top5 = 0

    def add(
        self, logits: np.ndarray, labels: np.ndarray, video_index: np.ndarray, mask: np.ndarray
    ) -> None:
        keep = np.asarray(mask, bool)
        logits = np.asarray(logits, np.float64)[keep]
        labels = np.asarray(labels)[keep]
        video_index = np.asarray(video_index)[keep]
        self.clips += len(labels)
        self.clip_top1 += int(topk_correct(logits, labels, 1).sum())
        self.clip_top5 += int(topk_correct(logits, labels, 5).sum())
        for row, vid in enumerate(video_index.tolist()):
            if vid in self._sums:
                self._sums[vid] += logits[row]
                self._counts[vid] += 1
            else:
                self._sums[vid] = logits[row].copy()
                self._counts[vid] = 1
                self._labels[vid] = int(labels[row])

    def local_arrays(self) -> dict[str, np.ndarray]:
        ids = np.array(sorted(self._sums), np.int64)
        return {
            "video_index": ids,
            "sums": np.stack([self._sums[i] for i in ids])
            if len(ids)
            else np.zeros((0, self.num_classes)),
            "counts": np.array([self._counts[i] for i in ids], np.int64),
            "labels": np.array([self._labels[i] for i in ids], np.int64),
            "clip_stats": np.array([self.clips, self.clip_top1, self.clip_top5], np.int64),
        }

    def merged(self) -> dict[str, np.ndarray]:
        """All processes' videos (a video split over processes is merged by summing)."""
        local = self.local_arrays()
        if jax.process_count() > 1:
            local = _gather_ragged(local)
        ids, inverse = np.unique(local["video_index"], return_inverse=True)
        sums = np.zeros((len(ids), self.num_classes))
        np.add.at(sums, inverse, local["sums"])
        counts = np.bincount(inverse, weights=local["counts"], minlength=len(ids))
        labels = np.zeros(len(ids), np.int64)
        labels[inverse] = local["labels"]
        return {
            "video_index": ids,
            "logits": sums / np.maximum(counts, 1)[:, None],
            "labels": labels,
            "clip_stats": local["clip_stats"].reshape(-1, 3).sum(0),
        }


def _gather_ragged(local: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """process_allgather needs equal shapes: pad each process's videos to the longest."""
    n = len(local["video_index"])
    longest = int(np.max(parallel.allgather_host(np.array([n]))))
    padded = {
        k: np.concatenate([v, np.zeros((longest - n,) + v.shape[1:], v.dtype)])
        for k, v in local.items()
        if k != "clip_stats"
    }
    padded["valid"] = np.arange(longest) < n
    gathered = parallel.allgather_host(padded)
    valid = gathered.pop("valid")
    out = {k: v[valid] for k, v in gathered.items()}
    out["clip_stats"] = parallel.allgather_host(local["clip_stats"][None])
    return out


def summarize(
    merged: dict[str, np.ndarray], num_classes: int, reversal_partner: Sequence[int | None] | None
) -> tuple[dict[str, float], dict]:
    """Scalars (top-1/5 at clip and video level, pairwise reversal) and the per-class extras."""
    clips, clip_top1, clip_top5 = (int(v) for v in merged["clip_stats"])
    logits, labels = merged["logits"], merged["labels"]
    predictions = logits.argmax(-1) if len(labels) else np.zeros(0, np.int64)
    metrics = {
        "clip_top1": clip_top1 / max(clips, 1),
        "clip_top5": clip_top5 / max(clips, 1),
        "video_top1": float(topk_correct(logits, labels, 1).mean()) if len(labels) else 0.0,
        "video_top5": float(topk_correct(logits, labels, 5).mean()) if len(labels) else 0.0,
        "num_videos": float(len(labels)),
        "num_clips": float(clips),
    }
    pairwise = pairwise_reversal_accuracy(logits, labels, reversal_partner)
    if pairwise is not None:
        metrics["pairwise_reversal_accuracy"] = pairwise
    extras = {
        "per_class_accuracy": per_class_accuracy(predictions, labels, num_classes),
        "confusion_matrix": confusion_matrix(predictions, labels, num_classes),
    }
    return metrics, extras


def confusion_matrix_image(
    cm: np.ndarray, class_names: Sequence[str], title: str = ""
) -> np.ndarray:
    """Row-normalised confusion matrix rendered as an RGB uint8 image (PNG / TensorBoard)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = cm.shape[0]
    rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = min(max(4.0, 0.45 * n + 2.0), 16.0)
    fig, ax = plt.subplots(figsize=(size, size), dpi=80)
    ax.imshow(rows, cmap="Blues", vmin=0.0, vmax=1.0)
    if n <= 40:  # beyond that the labels are unreadable anyway
        names = [str(c)[:24] for c in class_names]
        ax.set_xticks(range(n), names, rotation=90, fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(
                            j,
                            i,
                            str(cm[i, j]),
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="white" if rows[i, j] > 0.5 else "black",
                        )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def save_png(image: np.ndarray, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.imsave(buffer, image, format="png")
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


# ------------------------------------------------------------------ eval over the mesh
def make_eval_step(
    model,
    mesh,
    policy: CompilePolicy = CompilePolicy(),
    input_normalization: normalization.Normalization | None = None,
):
    """jit(shard_map(forward)), compiled by `policy`: replicated variables, batch-sharded clips
    -> sharded logits.

    uint8 clips are normalised inside by `input_normalization` (default [-1, 1]). Equal
    arguments (flax modules and meshes compare by value) return the same jitted function, so
    every evaluation of a run, or `evaluate` on one checkpoint after another, traces and
    compiles each input shape once.
    """
    return _eval_step(model, mesh, policy, input_normalization or normalization.Normalization())


@functools.lru_cache(maxsize=16)
def _eval_step(
    model, mesh, policy: CompilePolicy, input_normalization: normalization.Normalization
):
    def per_device(variables, video):
        return model.apply(variables, input_normalization.model_input(video), train=False)

    return policy.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(P(), P(parallel.BATCH_AXIS)),
            out_specs=P(parallel.BATCH_AXIS),
        )
    )


def run_eval(
    eval_step,
    variables,
    batches: Iterable[dict],
    mesh,
    num_classes: int,
    show_progress: bool = False,
    total_clips: int | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """Feeds every batch; returns merged per-video logits and clips/s (after the first batch).

    With `show_progress`, a line every EVAL_PROGRESS_SECONDS: this process's clips done, the
    rate and, given `total_clips` (this process's share), the ETA.
    """
    accumulator = VideoAccumulator(num_classes)
    start, clips_timed, pending = None, 0, None
    last_shown, clips_fed = time.perf_counter(), 0

    def collect(item):
        logits, batch = item
        host_logits = parallel.global_to_host(logits, mesh)
        accumulator.add(host_logits, batch["label"], batch["video_index"], batch["mask"])

    for i, batch in enumerate(batches):
        video = parallel.host_to_global(batch["video"], mesh)
        logits = eval_step(variables, video)
        if pending is not None:  # fetch the previous batch while this one computes
            collect(pending)
        pending = (logits, batch)
        if i == 0:
            collect(pending)  # the first batch includes compilation: time from after it
            pending = None
            start = time.perf_counter()
        else:
            clips_timed += int(np.sum(batch["mask"]))
        clips_fed += int(np.sum(batch["mask"]))
        now = time.perf_counter()
        if show_progress and start is not None and now - last_shown >= EVAL_PROGRESS_SECONDS:
            last_shown = now
            log("  " + eval_progress_line(i + 1, clips_fed, clips_timed, now - start, total_clips))
    if pending is not None:
        collect(pending)
    elapsed = time.perf_counter() - start if start is not None else 0.0
    total_timed = int(parallel.allgather_host(np.array([clips_timed])).sum())
    return accumulator.merged(), (total_timed / elapsed if elapsed > 0 else float("nan"))


def eval_progress_line(
    batches: int, clips: int, clips_timed: int, seconds: float, total_clips: int | None
) -> str:
    """'eval: batch 12, 96/480 clips, 31.0 clips/s, ETA 0:12' (rate after the first batch)."""
    rate = clips_timed / seconds if seconds > 0 and clips_timed else float("nan")
    out_of = f"/{total_clips}" if total_clips else ""
    line = f"eval: batch {batches}, {clips}{out_of} clips"
    if np.isfinite(rate):
        line += f", {rate:.1f} clips/s"
        if total_clips:
            line += f", ETA {format_duration(max(total_clips - clips, 0) / rate)}"
    return line


# The test protocols: "multi_clip" = config.data.eval_num_clips windows of num_frames x
# eval_num_crops crops, logits averaged per video; "all_frames" = the paper's, every frame of
# each video in one pass at a centre crop.
EVAL_PROTOCOLS = ("multi_clip", "all_frames")
# What the cost model in result.json describes: a 10 s Kinetics clip at 25 fps.
COST_MODEL_FRAMES = 250


def eval_protocols(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """config.data.eval_protocols (the first is the headline), default multi-clip only."""
    protocols = tuple(config.data.get("eval_protocols", None) or ("multi_clip",))
    unknown = [p for p in protocols if p not in EVAL_PROTOCOLS]
    if unknown:
        raise UserError(
            f"config.data.eval_protocols has {unknown[0]!r}; use any of "
            f"{', '.join(EVAL_PROTOCOLS)} (the first is the headline)."
        )
    return protocols


def _all_frames_step(model, mesh, config):
    """(mesh, eval step) for whole videos: this host's own devices (hosts see different
    lengths, so they cannot share one program); make_eval_step's cache compiles each length
    once per model."""
    if jax.process_count() > 1:
        mesh = parallel.make_mesh(jax.local_devices())
    step = make_eval_step(
        model, mesh, CompilePolicy.from_config(config), normalization.from_config(config.data)
    )
    return mesh, step


def run_all_frames_eval(
    eval_step,
    variables,
    batches: Iterable[dict],
    mesh,
    num_classes: int,
    show_progress: bool = False,
) -> tuple[dict[str, np.ndarray], float, int]:
    """Whole-video batches -> merged per-video logits, videos/s (batches of a length seen
    before only: a new length compiles) and the number of frames the model saw."""
    accumulator = VideoAccumulator(num_classes)
    seen_shapes, timed_seconds, timed_videos, frames = set(), 0.0, 0, 0
    sharding = parallel.batch_sharded(mesh)
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        video = jax.make_array_from_process_local_data(sharding, np.asarray(batch["video"]))
        logits = np.asarray(eval_step(variables, video))  # fully addressable: this host's mesh
        if batch["video"].shape in seen_shapes:
            timed_seconds += time.perf_counter() - start
            timed_videos += int(np.sum(batch["mask"]))
        seen_shapes.add(batch["video"].shape)
        frames += int(np.sum(np.asarray(batch["num_frames"])[np.asarray(batch["mask"], bool)]))
        accumulator.add(logits, batch["label"], batch["video_index"], batch["mask"])
        if show_progress and i and i % 50 == 0:
            log(f"  all-frames eval batch {i}, {accumulator.clips} videos", enabled=True)
    total = parallel.allgather_host(np.array([timed_videos, frames]).reshape(1, 2)).sum(0)
    seconds = float(np.max(parallel.allgather_host(np.array([timed_seconds]))))
    videos_per_sec = total[0] / seconds if seconds > 0 else float("nan")
    return accumulator.merged(), videos_per_sec, int(total[1])


def _evaluate_all_frames(
    config, model, variables, mesh, info, reverse: bool, is_main: bool
) -> tuple[dict[str, float], dict]:
    local_mesh, step = _all_frames_step(model, mesh, config)
    if local_mesh is not mesh:
        variables = jax.device_put(
            parallel.replicated_to_host(variables), parallel.replicated(local_mesh)
        )
    local_batch = local_mesh.size * int(config.data.get("all_frames_videos_per_device", 1))
    partner = getattr(info, "reversal_partner", None)

    def batches(reverse_time: bool):
        return inputs.all_frames_eval_batches(
            config.data,
            local_batch=local_batch,
            reverse_time=reverse_time,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )

    merged, videos_per_sec, frames = run_all_frames_eval(
        step, variables, batches(False), local_mesh, info.num_classes, show_progress=is_main
    )
    metrics, extras = summarize(merged, info.num_classes, partner)
    metrics["frames_seen"] = float(frames)
    metrics["eval_videos_per_sec"] = videos_per_sec
    metrics["eval_clips_per_sec"] = videos_per_sec  # a clip is a whole video here
    if reverse:
        reversed_merged, _, _ = run_all_frames_eval(
            step, variables, batches(True), local_mesh, info.num_classes
        )
        reversed_metrics, _ = summarize(reversed_merged, info.num_classes, partner)
        metrics["reversed_video_top1"] = reversed_metrics["video_top1"]
        metrics["reversed_clip_top1"] = reversed_metrics["clip_top1"]
    return metrics, extras


def evaluate_variables(
    config: ml_collections.ConfigDict,
    model,
    variables,
    mesh,
    info,
    eval_step=None,
    is_main: bool = True,
) -> tuple[dict[str, float], dict]:
    """All evaluation numbers for one set of variables, for every protocol in
    config.data.eval_protocols: the first gives the headline metrics (and, if asked, the
    reversed-time ones); the others add `<protocol>_video_top1/5`; extras['protocols'] holds
    each protocol's full metrics for result.json."""
    results = {}
    for i, protocol in enumerate(eval_protocols(config)):
        reverse = bool(config.reverse_time_eval) and i == 0
        if protocol == "all_frames":
            results[protocol] = _evaluate_all_frames(
                config, model, variables, mesh, info, reverse, is_main
            )
        else:
            results[protocol] = _evaluate_multi_clip(
                config, model, variables, mesh, info, eval_step, reverse, is_main
            )
    headline = next(iter(results))
    metrics, extras = dict(results[headline][0]), dict(results[headline][1])
    for protocol, (other, _) in results.items():
        if protocol != headline:
            metrics.update({f"{protocol}_{k}": other[k] for k in ("video_top1", "video_top5")})
    extras["protocols"] = {p: dict(m, headline=p == headline) for p, (m, _) in results.items()}
    return metrics, extras


def _evaluate_multi_clip(
    config, model, variables, mesh, info, eval_step, reverse: bool, is_main: bool
) -> tuple[dict[str, float], dict]:
    eval_step = eval_step or make_eval_step(
        model, mesh, CompilePolicy.from_config(config), normalization.from_config(config.data)
    )
    local_batch = parallel.local_batch_size(config.eval_batch_size, mesh)
    partner = getattr(info, "reversal_partner", None)

    def batches(reverse: bool):
        return inputs.eval_batches(
            config.data,
            local_batch=local_batch,
            reverse_time=reverse,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )

    merged, clips_per_sec = run_eval(
        eval_step,
        variables,
        batches(False),
        mesh,
        info.num_classes,
        show_progress=is_main,
        total_clips=_local_eval_clips(config, info),
    )
    metrics, extras = summarize(merged, info.num_classes, partner)
    metrics["eval_clips_per_sec"] = clips_per_sec
    if reverse:
        reversed_merged, _ = run_eval(eval_step, variables, batches(True), mesh, info.num_classes)
        reversed_metrics, _ = summarize(reversed_merged, info.num_classes, partner)
        metrics["reversed_video_top1"] = reversed_metrics["video_top1"]
        metrics["reversed_clip_top1"] = reversed_metrics["clip_top1"]
    return metrics, extras


def _local_eval_clips(config: ml_collections.ConfigDict, info) -> int | None:
    """This process's clips in one pass over the eval split (for the ETA); None if unknown."""
    try:
        videos = int(info.split_sizes[config.data.eval_split])
    except (KeyError, TypeError, ValueError, FileNotFoundError):
        return None
    views = int(config.data.eval_num_clips) * int(config.data.eval_num_crops)
    return -(-videos // jax.process_count()) * views


def report(
    workdir: str,
    writer: MetricWriter,
    step: int,
    metrics: dict[str, float],
    extras: dict,
    class_names: Sequence[str],
    is_main: bool,
) -> None:
    """Eval scalars and the confusion matrix to TensorBoard, jsonl, PNG, stdout."""
    writer.write_scalars(step, metrics, prefix="eval/")
    if not is_main:
        return
    image = confusion_matrix_image(
        extras["confusion_matrix"],
        class_names,
        title=f"step {step}: video top-1 {metrics['video_top1']:.3f}",
    )
    writer.write_image(step, "eval/confusion_matrix", image)
    save_png(image, os.path.join(workdir, "confusion_matrix.png"))
    shown = "  ".join(
        f"{k} {v:.3f}"
        for k, v in metrics.items()
        if k
        not in (
            "num_videos",
            "num_clips",
            "eval_clips_per_sec",
            "eval_videos_per_sec",
            "frames_seen",
        )
    )
    log(
        f"eval @ step {step}: {shown}  ({int(metrics['num_videos'])} videos, "
        f"{metrics['eval_clips_per_sec']:.1f} clips/s)"
    )


def write_result(
    workdir: str,
    *,
    config: ml_collections.ConfigDict,
    info,
    step: int,
    metrics: dict[str, float],
    extras: dict,
    num_params: int,
    train_clips_per_sec: float | None,
) -> dict[str, Any]:
    """Writes result.json (process 0 calls it); keeps a previous train throughput if not given."""
    path = os.path.join(workdir, "result.json")
    previous = {}
    if os.path.exists(path):
        import json

        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
    if train_clips_per_sec is None:
        train_clips_per_sec = previous.get("train_clips_per_sec")
    per_class = {
        str(name): (None if np.isnan(acc) else float(acc))
        for name, acc in zip(info.class_names, extras["per_class_accuracy"])
    }
    result = {
        "model": config.model.name,
        "dataset": config.data.name,
        "dataset_version": info.version,
        "num_classes": int(info.num_classes),
        "num_params": int(num_params),
        "step": int(step),
        "num_frames": int(config.data.num_frames),
        "crop_size": int(config.data.crop_size),
        # The throughputs are only comparable between runs on the same kind and number of devices.
        "device": f"{jax.device_count()}x {jax.devices()[0].device_kind}",
        "train_clips_per_sec": train_clips_per_sec,
        "eval_clips_per_sec": metrics.get("eval_clips_per_sec"),
        "metrics": {k: float(v) for k, v in metrics.items() if k != "eval_clips_per_sec"},
        "per_class_accuracy": per_class,
        "eval_protocols": _jsonable(extras.get("protocols")),
        "all_frames_cost": all_frames_cost(config, extras.get("protocols")),
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    checkpointing.write_json(path, result)
    return result


def _jsonable(protocols: dict | None) -> dict | None:
    if protocols is None:
        return None
    return {
        p: {k: (bool(v) if isinstance(v, bool) else float(v)) for k, v in m.items()}
        for p, m in protocols.items()
    }


def all_frames_cost(
    config: ml_collections.ConfigDict, protocols: dict | None, frames: int = COST_MODEL_FRAMES
) -> dict[str, Any] | None:
    """The cost model of one all-frames pass over a `frames`-frame video at the run's crop:
    multiply-adds and the activation-memory estimate (video_s3d.cost), and the time the
    multiply-adds predict from this run's own measured whole-video throughput."""
    from video_s3d import cost

    size = int(config.data.crop_size)
    try:
        macs = cost.gmacs(config.model.name, frames, size)
        memory = cost.inference_activation_bytes(config.model.name, frames, size)
    except ValueError:  # a model outside the zoo: no spec to count from
        return None
    result = {
        "frames": frames,
        "crop_size": size,
        "gmacs": macs,
        "activation_bytes_estimate": memory,
        "seconds_estimate": None,
    }
    measured = (protocols or {}).get("all_frames")
    if measured and measured.get("num_videos") and measured.get("eval_videos_per_sec", 0) > 0:
        # Seconds per measured video, scaled by multiply-adds to a `frames`-frame video.
        mean_frames = measured["frames_seen"] / measured["num_videos"]
        per_video = 1.0 / measured["eval_videos_per_sec"]
        result["seconds_estimate"] = (
            per_video * macs / cost.gmacs(config.model.name, max(int(round(mean_frames)), 1), size)
        )
        result["measured_mean_frames"] = mean_frames
    return result


# ------------------------------------------------------------------- standalone --mode=eval
def with_recorded_normalization(
    config: ml_collections.ConfigDict, workdir: str, is_main: bool = True
) -> ml_collections.ConfigDict:
    """`config` with the input normalisation the run's weights expect, as its config.json
    records it (an imported torchvision run records torchvision's): the weights decide."""
    import json

    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        return config
    with open(path, encoding="utf-8") as f:
        recorded = normalization.from_config(json.load(f).get("data", {}))
    if recorded == normalization.from_config(config.data):
        return config
    log(
        f"inputs normalised as {workdir}/config.json records (mean {recorded.mean}, std "
        f"{recorded.std}), not as the given config",
        is_main,
    )
    config = ml_collections.ConfigDict(config.to_dict())
    config.data.update(recorded.to_config())
    return config


def evaluate(
    config: ml_collections.ConfigDict, workdir: str, step: str | int = steps.LATEST
) -> dict[str, Any]:
    """Evaluates one checkpoint in `workdir` (`step`: latest, best or a number; see
    video_s3d.steps); writes result.json and summaries."""
    is_main = jax.process_index() == 0
    mesh = parallel.make_mesh()
    parallel.check_global_batch(config.eval_batch_size, mesh, "config.eval_batch_size")
    ckpt = (
        checkpointing.Checkpoints(workdir, read_only=True)
        if os.path.isdir(os.path.join(workdir, "checkpoints"))
        else None
    )
    if ckpt is None or not ckpt.all_steps():
        raise UserFileError(
            f"{workdir} holds no checkpoint to evaluate; train first with "
            f"--mode=train --workdir={workdir}."
        )
    step, how = steps.resolve(ckpt, steps.parse(step), workdir)
    config = with_recorded_normalization(config, workdir, is_main)
    inputs.ensure_ready(config.data)
    info = inputs.dataset_info(config.data)
    ckpt.check_same_run({"model": config.model.name, "num_classes": info.num_classes})
    model = train_state.create_model(config, info.num_classes)
    variables = ckpt.restore_model(step, train_state.abstract_variables(model, config, mesh))
    ckpt.close()
    log(
        f"evaluating {config.model.name} at step {step} ({how}) on "
        f"{config.data.name}:{config.data.eval_split}",
        is_main,
    )
    metrics, extras = evaluate_variables(config, model, variables, mesh, info, is_main=is_main)
    writer = MetricWriter(workdir, enabled=is_main)
    report(workdir, writer, step, metrics, extras, info.class_names, is_main)
    writer.close()
    result = {}
    if is_main:
        result = write_result(
            workdir,
            config=config,
            info=info,
            step=step,
            metrics=metrics,
            extras=extras,
            num_params=train_state.count_params(variables["params"]),
            train_clips_per_sec=None,
        )
    return result
