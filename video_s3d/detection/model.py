"""A Faster R-CNN-style action detector on any zoo trunk, pure-functional Flax.

    video [B, T, H, W, 3] -> trunk (zoo backbone, e.g. S3D-G) -> features [B, T', H', W', C]
      region proposals: a 3x3 conv + ReLU on the time-averaged map, per-anchor objectness and
        box deltas, decoded, clipped, NMS'd to a fixed `num_proposals` (padding masked)
      ROI-Align of the spatio-temporal map with each proposal held over the clip's time extent,
        averaged over time -> [B, R, P, P, C]
      head: two fully connected layers, then action logits (classes + background) and one
        class-agnostic box refinement per region.

Boxes refer to the clip's key frame (the middle frame, as in AVA-style detectors). Variables:
{'params': {'backbone': ..., 'rpn_*', 'head_*'}, 'batch_stats': {'backbone': ...}}; the
'backbone' subtree has the classification model's layout, so a Kinetics classification run's
trunk loads with `load_trunk`. Every shape is static: jit, shard_map and vmap apply as usual.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from video_s3d.detection import boxes as box_ops
from video_s3d.detection.roi_align import roi_align
from video_s3d.models import zoo
from video_s3d.models.inception import Backbone
from video_s3d.models.spec import LAYER_NAMES


class ActionDetector(nn.Module):
    """See the module docstring. `trunk` is any zoo name; `trunk_overrides` are `zoo.create`'s
    overrides (dtype, bn_axis_name, remat, ...)."""

    trunk: str
    num_classes: int
    feature_layer: str = "Mixed_4f"
    anchor_sizes: Sequence[float] = (0.1, 0.2, 0.4, 0.8)
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0)
    rpn_channels: int = 256
    head_channels: int = 1024
    roi_size: int = 7
    pre_nms_proposals: int = 1000
    num_proposals: int = 300
    proposal_nms_iou: float = 0.7
    trunk_overrides: Any = None

    def setup(self):
        if self.feature_layer not in LAYER_NAMES:
            raise ValueError(
                f"feature_layer {self.feature_layer!r} is not a trunk layer; use one "
                f"of {', '.join(LAYER_NAMES)}."
            )
        classifier = zoo.create(self.trunk, 1, **dict(self.trunk_overrides or {}))
        # The trunk stops at the feature layer: nothing above it is built.
        self.backbone = Backbone(
            classifier.spec,
            classifier.dtype,
            classifier.bn_axis_name,
            classifier.remat,
            last_layer=self.feature_layer,
        )
        num_anchors = len(self.anchor_sizes) * len(self.aspect_ratios)
        self.rpn_conv = nn.Conv(self.rpn_channels, (3, 3), name="rpn_conv")
        self.rpn_objectness = nn.Conv(num_anchors, (1, 1), name="rpn_objectness")
        self.rpn_deltas = nn.Conv(
            4 * num_anchors, (1, 1), kernel_init=nn.initializers.normal(0.001), name="rpn_deltas"
        )
        self.head_fc1 = nn.Dense(self.head_channels, name="head_fc1")
        self.head_fc2 = nn.Dense(self.head_channels, name="head_fc2")
        self.head_logits = nn.Dense(self.num_classes + 1, name="head_logits")
        self.head_deltas = nn.Dense(
            4, kernel_init=nn.initializers.normal(0.001), name="head_deltas"
        )

    def __call__(
        self,
        video: jax.Array,
        train: bool = False,
        extra_rois: jax.Array | None = None,
        extra_rois_valid: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """video float [B, T, H, W, 3] (normalised). `extra_rois` [B, G, 4] (with
        `extra_rois_valid` [B, G]) join the proposals as regions: the ground-truth boxes during
        training, as in Faster R-CNN, so the head sees positives from the first step."""
        features = self.backbone(video, train)[self.feature_layer].astype(jnp.float32)
        batch, _, height, width, _ = features.shape

        # Region proposals on the time-averaged map.
        hidden = nn.relu(self.rpn_conv(jnp.mean(features, axis=1)))
        objectness = self.rpn_objectness(hidden).reshape(batch, -1)
        rpn_deltas = self.rpn_deltas(hidden).reshape(batch, -1, 4)
        anchors = box_ops.anchors(height, width, self.anchor_sizes, self.aspect_ratios)
        proposals, proposals_valid = jax.vmap(functools.partial(self._select_proposals, anchors))(
            jax.lax.stop_gradient(objectness), jax.lax.stop_gradient(rpn_deltas)
        )
        rois, rois_valid = proposals, proposals_valid
        if extra_rois is not None:
            if extra_rois_valid is None:
                extra_rois_valid = jnp.ones(extra_rois.shape[:2], bool)
            rois = jnp.concatenate([rois, extra_rois.astype(rois.dtype)], axis=1)
            rois_valid = jnp.concatenate([rois_valid, extra_rois_valid], axis=1)

        # Per-region head on the ROI-Aligned spatio-temporal features.
        pooled = jax.vmap(functools.partial(roi_align, output_size=self.roi_size))(features, rois)
        x = pooled.reshape(batch, rois.shape[1], -1)
        x = nn.relu(self.head_fc1(x))
        x = nn.relu(self.head_fc2(x))
        return {
            "anchors": anchors,
            "rpn_objectness": objectness,
            "rpn_deltas": rpn_deltas,
            "rois": rois,
            "rois_valid": rois_valid,
            "class_logits": self.head_logits(x).astype(jnp.float32),
            "box_deltas": self.head_deltas(x).astype(jnp.float32),
        }

    def _select_proposals(self, anchors, objectness, deltas):
        """One clip's top `num_proposals` boxes after NMS: ([N, 4], valid [N])."""
        k = min(self.pre_nms_proposals, objectness.shape[0])
        scores, index = jax.lax.top_k(objectness, k)
        candidates = box_ops.clip_to_frame(box_ops.decode(deltas[index], anchors[index]))
        # Boxes squashed to (almost) nothing by the frame's edge carry no region.
        valid = box_ops.area(candidates) > 1e-4
        keep_index, keep = box_ops.non_max_suppression(
            candidates, scores, valid, self.proposal_nms_iou, self.num_proposals
        )
        return candidates[keep_index] * keep[:, None], keep


def load_trunk(detector_variables: dict, classifier_variables: dict) -> dict:
    """The detector's variables with the trunk ('backbone' params and batch stats) replaced by a
    classification model's (e.g. restored from a Kinetics run) for every layer the detector
    keeps (the classifier's layers above the feature layer are dropped); the detection layers
    stay as they are."""
    out = dict(detector_variables)
    for collection in ("params", "batch_stats"):
        if collection not in detector_variables:
            continue
        mine = dict(detector_variables[collection])
        theirs = classifier_variables.get(collection, {}).get("backbone", {})
        trunk = {name: theirs.get(name) for name in mine["backbone"]}
        if any(
            trunk[name] is None
            or jax.tree.structure(trunk[name]) != jax.tree.structure(mine["backbone"][name])
            for name in trunk
        ):
            raise ValueError(
                "The classification checkpoint's trunk does not match the "
                "detector's; train the detector with the same model name."
            )
        mine["backbone"] = trunk
        out[collection] = mine
    return out


# ------------------------------------------------------------------------------------ loss


def _smooth_l1(x: jax.Array, beta: float) -> jax.Array:
    absolute = jnp.abs(x)
    return jnp.where(absolute < beta, 0.5 * x * x / beta, absolute - 0.5 * beta)


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    mask = mask.astype(values.dtype)
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def _match(candidates, gt_boxes, gt_valid):
    """IoU [N, G] with padding ground truth at -1; best gt per candidate and its IoU."""
    iou = jnp.where(gt_valid[None, :], box_ops.pairwise_iou(candidates, gt_boxes), -1.0)
    return iou, jnp.argmax(iou, axis=1), jnp.max(iou, axis=1)


def _clip_loss(
    anchors,
    outputs,
    gt_boxes,
    gt_labels,
    gt_valid,
    rpn_positive_iou,
    rpn_negative_iou,
    foreground_iou,
):
    # RPN: an anchor is positive at IoU >= 0.7 or when it is a ground truth's best anchor,
    # negative below 0.3, ignored in between (Ren et al. 2015). Faster R-CNN samples 1:1
    # minibatches of positives and negatives; with static shapes we weight instead: the loss is
    # the mean over positives plus the mean over negatives.
    iou, best_gt, best_iou = _match(anchors, gt_boxes, gt_valid)
    best_per_gt = jnp.max(iou, axis=0)
    is_best = jnp.any((iou == best_per_gt[None, :]) & (iou > 0) & gt_valid[None, :], axis=1)
    positive = (best_iou >= rpn_positive_iou) | is_best
    negative = (best_iou < rpn_negative_iou) & ~positive
    logits = outputs["rpn_objectness"]
    rpn_class = _masked_mean(
        optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits)), positive
    ) + _masked_mean(optax.sigmoid_binary_cross_entropy(logits, jnp.zeros_like(logits)), negative)
    targets = box_ops.encode(gt_boxes[best_gt], anchors)
    rpn_box = _masked_mean(
        jnp.sum(_smooth_l1(outputs["rpn_deltas"] - targets, 1 / 9), axis=-1), positive
    )

    # Head: a region is foreground (its gt's class) at IoU >= 0.5, else background (class 0).
    rois, valid = outputs["rois"], outputs["rois_valid"]
    _, roi_gt, roi_iou = _match(rois, gt_boxes, gt_valid)
    foreground = (roi_iou >= foreground_iou) & valid
    labels = jnp.where(foreground, gt_labels[roi_gt] + 1, 0)
    log_probs = jax.nn.log_softmax(outputs["class_logits"], axis=-1)
    cross_entropy = -jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
    head_class = _masked_mean(cross_entropy, valid)
    roi_targets = box_ops.encode(gt_boxes[roi_gt], rois)
    head_box = _masked_mean(
        jnp.sum(_smooth_l1(outputs["box_deltas"] - roi_targets, 1.0), axis=-1), foreground
    )
    return {
        "rpn_class": rpn_class,
        "rpn_box": rpn_box,
        "head_class": head_class,
        "head_box": head_box,
    }


def detection_loss(
    outputs: dict,
    gt_boxes: jax.Array,
    gt_labels: jax.Array,
    gt_valid: jax.Array,
    rpn_positive_iou: float = 0.7,
    rpn_negative_iou: float = 0.3,
    foreground_iou: float = 0.5,
) -> tuple[jax.Array, dict]:
    """(total loss, its four terms), each averaged over the batch. gt_boxes [B, G, 4] (key-frame
    boxes), gt_labels [B, G] action indices, gt_valid [B, G] (padding False)."""
    per_clip = {k: v for k, v in outputs.items() if k != "anchors"}
    terms = jax.vmap(
        functools.partial(
            _clip_loss,
            rpn_positive_iou=rpn_positive_iou,
            rpn_negative_iou=rpn_negative_iou,
            foreground_iou=foreground_iou,
        ),
        in_axes=(None, 0, 0, 0, 0),
    )(outputs["anchors"], per_clip, gt_boxes, gt_labels, gt_valid)
    terms = {k: jnp.mean(v) for k, v in terms.items()}
    return sum(terms.values()), terms


# ------------------------------------------------------------------------------ inference


def postprocess(
    outputs: dict, max_detections: int = 100, nms_iou: float = 0.5, min_score: float = 0.01
) -> dict[str, jax.Array]:
    """Final detections per clip, fixed size: boxes [B, D, 4], scores [B, D], labels [B, D]
    (action index), valid [B, D]; per-class NMS, then the D best over all classes."""
    probabilities = jax.nn.softmax(outputs["class_logits"], axis=-1)[..., 1:]  # [B, R, K]
    refined = box_ops.clip_to_frame(box_ops.decode(outputs["box_deltas"], outputs["rois"]))
    num_classes = probabilities.shape[-1]
    per_class = min(max_detections, refined.shape[1])

    def one_class(boxes, scores, valid):
        index, keep = box_ops.non_max_suppression(boxes, scores, valid, nms_iou, per_class)
        return boxes[index], jnp.where(keep, scores[index], -1.0)

    def one_clip(boxes, scores, rois_valid):
        valid = rois_valid[None, :] & (scores.T > min_score)  # [K, R]
        class_boxes, class_scores = jax.vmap(one_class, in_axes=(None, 0, 0))(
            boxes, scores.T, valid
        )  # [K, D']
        flat_scores = class_scores.reshape(-1)
        top_scores, top = jax.lax.top_k(flat_scores, min(max_detections, flat_scores.shape[0]))
        return {
            "boxes": class_boxes.reshape(-1, 4)[top],
            "scores": jnp.maximum(top_scores, 0.0),
            "labels": (top // per_class).astype(jnp.int32),
            "valid": top_scores >= 0.0,
        }

    return jax.vmap(one_clip)(refined, probabilities, outputs["rois_valid"])
