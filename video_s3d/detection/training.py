"""Training and evaluation steps of the action detector, and the frame-mAP of a set of videos.

The pieces a trainer needs, kept apart from any particular loop: key-frame targets from box
tubes, a jitted train step (loss, grads, optax update, BatchNorm statistics), per-frame
detection of whole videos with clips centred on the frames, and frame-/video-mAP over them.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from video_s3d import normalization
from video_s3d.detection import linking, metrics
from video_s3d.detection.model import ActionDetector, detection_loss, postprocess
from video_s3d.models.layers import BN_MOMENTUM


class LabelledVideo(NamedTuple):
    """One video with its tubes: frames uint8 [T, H, W, 3], labels [A], boxes [A, T, 4] and
    visible [A, T] (where the actor is annotated)."""

    video_id: str
    frames: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    visible: np.ndarray


def keyframe_targets(
    labels: np.ndarray, boxes: np.ndarray, visible: np.ndarray, frame: int, max_actors: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ground truth of one frame, padded to `max_actors`: boxes [G, 4], labels [G], valid [G]."""
    present = np.flatnonzero(visible[:, frame])[:max_actors]
    gt_boxes = np.zeros((max_actors, 4), np.float32)
    gt_labels = np.zeros((max_actors,), np.int32)
    gt_valid = np.zeros((max_actors,), bool)
    gt_boxes[: len(present)] = boxes[present, frame]
    gt_labels[: len(present)] = labels[present]
    gt_valid[: len(present)] = True
    return gt_boxes, gt_labels, gt_valid


def clip_around(frames: np.ndarray, centre: int, length: int, stride: int = 1) -> np.ndarray:
    """The `length` frames at `stride` whose middle (index length // 2) is `centre`, the video's
    first and last frames repeated where the clip runs past its ends."""
    index = np.clip((np.arange(length) - length // 2) * stride + centre, 0, len(frames) - 1)
    return frames[index]


class TrainState(NamedTuple):
    params: Any
    batch_stats: Any
    opt_state: Any


def init(
    model: ActionDetector,
    rng: jax.Array,
    clip_shape: tuple[int, ...],
    optimizer: optax.GradientTransformation,
) -> TrainState:
    variables = model.init(rng, jnp.zeros((1,) + tuple(clip_shape), jnp.float32))
    return TrainState(
        variables["params"], variables.get("batch_stats", {}), optimizer.init(variables["params"])
    )


def make_train_step(
    model: ActionDetector,
    optimizer: optax.GradientTransformation,
    norm: normalization.Normalization = normalization.Normalization(),
) -> Callable:
    """step(state, clips uint8 [B, T, H, W, 3], gt_boxes, gt_labels, gt_valid) -> (state,
    {'loss', 'rpn_class', ...}), jitted."""

    def loss_fn(params, batch_stats, clips, gt_boxes, gt_labels, gt_valid):
        outputs, updates = model.apply(
            {"params": params, "batch_stats": batch_stats},
            norm(clips),
            train=True,
            extra_rois=gt_boxes,
            extra_rois_valid=gt_valid,
            mutable=["batch_stats"],
        )
        loss, terms = detection_loss(outputs, gt_boxes, gt_labels, gt_valid)
        return loss, (terms, updates["batch_stats"])

    @jax.jit
    def step(state: TrainState, clips, gt_boxes, gt_labels, gt_valid):
        (loss, (terms, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, clips, gt_boxes, gt_labels, gt_valid
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, batch_stats, opt_state), {"loss": loss, **terms}

    return step


def make_batch_statistics(
    model: ActionDetector, norm: normalization.Normalization = normalization.Normalization()
) -> Callable:
    """stats(params, batch_stats, clips) -> the BatchNorm statistics of this batch, every layer.

    BN keeps `ra = m * ra + (1 - m) * batch`; one train-mode pass from ra = 0 leaves
    (1 - m) * batch. With TF-Slim's m = 0.999 a short run's running averages still mostly hold
    their initial values, so evaluation uses `precise_batch_norm`'s averages instead (as
    video_s3d/train.py's precise BatchNorm does for classification).
    """

    @jax.jit
    def stats(params, batch_stats, clips):
        zeros = jax.tree.map(jnp.zeros_like, batch_stats)
        _, mutated = model.apply(
            {"params": params, "batch_stats": zeros},
            norm(clips),
            train=True,
            mutable=["batch_stats"],
        )
        return jax.tree.map(lambda s: s / (1.0 - BN_MOMENTUM), mutated["batch_stats"])

    return stats


def precise_batch_norm(stats: Callable, state: TrainState, batches: Iterable) -> TrainState:
    """`state` with its running averages replaced by the mean statistics over `batches`."""
    total, count = None, 0
    for clips in batches:
        batch = stats(state.params, state.batch_stats, clips)
        total = batch if total is None else jax.tree.map(jnp.add, total, batch)
        count += 1
    return state._replace(batch_stats=jax.tree.map(lambda s: s / count, total))


def make_detect(
    model: ActionDetector,
    max_detections: int = 20,
    norm: normalization.Normalization = normalization.Normalization(),
) -> Callable:
    """detect(params, batch_stats, clips uint8 [B, T, H, W, 3]) -> postprocess's dict, jitted."""

    @jax.jit
    def detect(params, batch_stats, clips):
        outputs = model.apply({"params": params, "batch_stats": batch_stats}, norm(clips))
        return postprocess(outputs, max_detections=max_detections)

    return detect


def detect_videos(
    detect: Callable,
    state: TrainState,
    videos: Iterable[LabelledVideo],
    clip_length: int,
    frame_stride: int = 1,
    batch_size: int = 8,
    stride: int = 1,
):
    """Per-frame detections of every `frame_stride`-th frame of each video, from the clip (of
    frames `stride` apart) centred on that frame: {video_id: (frames [F], {'boxes': [F, D, 4], 'scores', 'labels', 'valid'})}."""
    jobs = [
        (video.video_id, t, video.frames)
        for video in videos
        for t in range(0, len(video.frames), frame_stride)
    ]
    results: dict[str, list] = {}
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        clips = np.stack([clip_around(frames, t, clip_length, stride) for _, t, frames in chunk])
        pad = batch_size - len(clips)  # one compiled shape for every batch
        if pad:
            clips = np.concatenate([clips, np.repeat(clips[-1:], pad, axis=0)])
        out = jax.device_get(detect(state.params, state.batch_stats, clips))
        for row, (video_id, t, _) in enumerate(chunk):
            results.setdefault(video_id, []).append((t, {k: v[row] for k, v in out.items()}))
    return {
        video_id: (
            np.array([t for t, _ in rows]),
            {k: np.stack([d[k] for _, d in rows]) for k in rows[0][1]},
        )
        for video_id, rows in results.items()
    }


def evaluate(
    detect: Callable,
    state: TrainState,
    videos: Iterable[LabelledVideo],
    num_classes: int,
    clip_length: int,
    frame_stride: int = 1,
    batch_size: int = 8,
    on_video: Callable[[int], None] | None = None,
    stride: int = 1,
) -> dict[str, Any]:
    """frame-mAP@0.5 over the evaluated frames where actors are annotated, and video-mAP at 0.2
    and 0.5 after linking (linking.link_video) the same frames' detections into tubes.

    Videos are read one at a time (only detections are kept), so `videos` may be a stream;
    `on_video(frames)` is called after each (progress)."""
    frame_detections, frame_truths, tubes, truth_tubes = [], [], [], []
    num_videos = 0
    for video in videos:
        detections = detect_videos(
            detect, state, [video], clip_length, frame_stride, batch_size, stride
        )
        frames, found = detections[video.video_id]
        num_videos += 1
        for row, t in enumerate(frames):
            for d in np.flatnonzero(found["valid"][row]):
                frame_detections.append(
                    metrics.FrameDetection(
                        video.video_id,
                        int(t),
                        int(found["labels"][row, d]),
                        float(found["scores"][row, d]),
                        found["boxes"][row, d],
                    )
                )
            for a in np.flatnonzero(video.visible[:, t]):
                frame_truths.append(
                    metrics.FrameBox(
                        video.video_id, int(t), int(video.labels[a]), video.boxes[a, t]
                    )
                )
        keep = [found["valid"][row] for row in range(len(frames))]
        tubes += linking.link_video(
            video.video_id,
            frames,
            [found["boxes"][r][k] for r, k in enumerate(keep)],
            [found["labels"][r][k] for r, k in enumerate(keep)],
            [found["scores"][r][k] for r, k in enumerate(keep)],
            num_classes,
        )
        for a in range(len(video.labels)):
            shown = frames[video.visible[a, frames]]
            if shown.size:
                truth_tubes.append(
                    metrics.Tube(
                        video.video_id, int(video.labels[a]), 1.0, shown, video.boxes[a, shown]
                    )
                )
        if on_video is not None:
            on_video(len(frames))
    frame_map, per_class = metrics.frame_map(frame_detections, frame_truths, num_classes)
    return {
        "num_videos": num_videos,
        "frame_map@0.5": frame_map,
        "frame_ap@0.5": per_class,
        "video_map@0.2": metrics.video_map(tubes, truth_tubes, num_classes, 0.2)[0],
        "video_map@0.5": metrics.video_map(tubes, truth_tubes, num_classes, 0.5)[0],
    }
