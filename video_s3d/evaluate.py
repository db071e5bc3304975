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
  per_class_accuracy: {class_name: video-level accuracy}, updated (UTC time).
"""
from __future__ import annotations

import datetime
import io
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import PartitionSpec as P

from video_s3d import checkpointing, inputs, parallel, train_state
from video_s3d.errors import UserFileError
from video_s3d.metric_writers import MetricWriter, log


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


def pairwise_reversal_accuracy(logits: np.ndarray, labels: np.ndarray,
                               partner: Sequence[int | None] | None) -> float | None:
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

    def add(self, logits: np.ndarray, labels: np.ndarray, video_index: np.ndarray,
            mask: np.ndarray) -> None:
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
            "sums": np.stack([self._sums[i] for i in ids]) if len(ids)
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
        return {"video_index": ids, "logits": sums / np.maximum(counts, 1)[:, None],
                "labels": labels, "clip_stats": local["clip_stats"].reshape(-1, 3).sum(0)}


def _gather_ragged(local: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """process_allgather needs equal shapes: pad each process's videos to the longest."""
    n = len(local["video_index"])
    longest = int(np.max(parallel.allgather_host(np.array([n]))))
    padded = {k: np.concatenate([v, np.zeros((longest - n,) + v.shape[1:], v.dtype)])
              for k, v in local.items() if k != "clip_stats"}
    padded["valid"] = np.arange(longest) < n
    gathered = parallel.allgather_host(padded)
    valid = gathered.pop("valid")
    out = {k: v[valid] for k, v in gathered.items()}
    out["clip_stats"] = parallel.allgather_host(local["clip_stats"][None])
    return out


def summarize(merged: dict[str, np.ndarray], num_classes: int,
              reversal_partner: Sequence[int | None] | None) -> tuple[dict[str, float], dict]:
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
    extras = {"per_class_accuracy": per_class_accuracy(predictions, labels, num_classes),
              "confusion_matrix": confusion_matrix(predictions, labels, num_classes)}
    return metrics, extras


def confusion_matrix_image(cm: np.ndarray, class_names: Sequence[str], title: str = "") -> np.ndarray:
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
                        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if rows[i, j] > 0.5 else "black")
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
def make_eval_step(model, mesh, compiler_options=None):
    """jit(shard_map(forward)): replicated variables, batch-sharded clips -> sharded logits."""
    def per_device(variables, video):
        return model.apply(variables, video, train=False)
    return jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(parallel.BATCH_AXIS)),
                                 out_specs=P(parallel.BATCH_AXIS)), compiler_options=compiler_options)


def run_eval(eval_step, variables, batches: Iterable[dict], mesh, num_classes: int,
             show_progress: bool = False) -> tuple[dict[str, np.ndarray], float]:
    """Feeds every batch; returns merged per-video logits and clips/s (after the first batch)."""
    accumulator = VideoAccumulator(num_classes)
    start, clips_timed, pending = None, 0, None

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
        if show_progress and i and i % 50 == 0:
            log(f"  eval batch {i}, {accumulator.clips} clips", enabled=True)
    if pending is not None:
        collect(pending)
    elapsed = time.perf_counter() - start if start is not None else 0.0
    total_timed = int(parallel.allgather_host(np.array([clips_timed])).sum())
    return accumulator.merged(), (total_timed / elapsed if elapsed > 0 else float("nan"))


def evaluate_variables(config: ml_collections.ConfigDict, model, variables, mesh, info,
                       eval_step=None, is_main: bool = True) -> tuple[dict[str, float], dict]:
    """All evaluation numbers for one set of variables (forward and, if asked, reversed)."""
    eval_step = eval_step or make_eval_step(model, mesh, train_state.compiler_options(config))
    local_batch = parallel.local_batch_size(config.eval_batch_size, mesh)
    partner = getattr(info, "reversal_partner", None)

    def batches(reverse: bool):
        return inputs.eval_batches(config.data, local_batch=local_batch, reverse_time=reverse,
                                   process_index=jax.process_index(),
                                   process_count=jax.process_count())

    merged, clips_per_sec = run_eval(eval_step, variables, batches(False), mesh, info.num_classes,
                                     show_progress=is_main)
    metrics, extras = summarize(merged, info.num_classes, partner)
    metrics["eval_clips_per_sec"] = clips_per_sec
    if config.reverse_time_eval:
        reversed_merged, _ = run_eval(eval_step, variables, batches(True), mesh, info.num_classes)
        reversed_metrics, _ = summarize(reversed_merged, info.num_classes, partner)
        metrics["reversed_video_top1"] = reversed_metrics["video_top1"]
        metrics["reversed_clip_top1"] = reversed_metrics["clip_top1"]
    return metrics, extras


def report(workdir: str, writer: MetricWriter, step: int, metrics: dict[str, float], extras: dict,
           class_names: Sequence[str], is_main: bool) -> None:
    """Eval scalars and the confusion matrix to TensorBoard, jsonl, PNG, stdout."""
    writer.write_scalars(step, metrics, prefix="eval/")
    if not is_main:
        return
    image = confusion_matrix_image(extras["confusion_matrix"], class_names,
                                   title=f"step {step}: video top-1 {metrics['video_top1']:.3f}")
    writer.write_image(step, "eval/confusion_matrix", image)
    save_png(image, os.path.join(workdir, "confusion_matrix.png"))
    shown = "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()
                      if k not in ("num_videos", "num_clips", "eval_clips_per_sec"))
    log(f"eval @ step {step}: {shown}  ({int(metrics['num_videos'])} videos, "
        f"{metrics['eval_clips_per_sec']:.1f} clips/s)")


def write_result(workdir: str, *, config: ml_collections.ConfigDict, info, step: int,
                 metrics: dict[str, float], extras: dict, num_params: int,
                 train_clips_per_sec: float | None) -> dict[str, Any]:
    """Writes result.json (process 0 calls it); keeps a previous train throughput if not given."""
    path = os.path.join(workdir, "result.json")
    previous = {}
    if os.path.exists(path):
        import json
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
    if train_clips_per_sec is None:
        train_clips_per_sec = previous.get("train_clips_per_sec")
    per_class = {str(name): (None if np.isnan(acc) else float(acc))
                 for name, acc in zip(info.class_names, extras["per_class_accuracy"])}
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
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    checkpointing.write_json(path, result)
    return result


# ------------------------------------------------------------------- standalone --mode=eval
def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Evaluates the latest checkpoint in `workdir`; writes result.json and summaries."""
    is_main = jax.process_index() == 0
    mesh = parallel.make_mesh()
    parallel.check_global_batch(config.eval_batch_size, mesh, "config.eval_batch_size")
    ckpt = checkpointing.Checkpoints(workdir, read_only=True) \
        if os.path.isdir(os.path.join(workdir, "checkpoints")) else None
    step = ckpt.latest_step() if ckpt else None
    if step is None:
        raise UserFileError(f"{workdir} holds no checkpoint to evaluate; train first with "
                                f"--mode=train --workdir={workdir}.")
    inputs.ensure_ready(config.data)
    info = inputs.dataset_info(config.data)
    ckpt.check_same_run({"model": config.model.name, "num_classes": info.num_classes})
    model = train_state.create_model(config, info.num_classes)
    variables = ckpt.restore_model(step, train_state.abstract_variables(model, config, mesh))
    ckpt.close()
    log(f"evaluating {config.model.name} at step {step} on {config.data.name}:{config.data.eval_split}",
        is_main)
    metrics, extras = evaluate_variables(config, model, variables, mesh, info, is_main=is_main)
    writer = MetricWriter(workdir, enabled=is_main)
    report(workdir, writer, step, metrics, extras, info.class_names, is_main)
    writer.close()
    result = {}
    if is_main:
        result = write_result(workdir, config=config, info=info, step=step, metrics=metrics,
                              extras=extras, num_params=train_state.count_params(variables["params"]),
                              train_clips_per_sec=None)
    return result
