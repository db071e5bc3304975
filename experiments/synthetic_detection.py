r"""Action detection (`config.task = "detection"`) on the generated synthetic_detection set.

  python -m video_s3d.main --config=experiments/synthetic_detection.py \
      --workdir=runs/synthetic_detection/tiny_s3dg
  python -m video_s3d.main --config=experiments/synthetic_detection.py:runlocal --workdir=/tmp/d

Trains the detector of video_s3d/detection/ (a zoo trunk cut at `detector.feature_layer`,
region proposals, ROI-Align over the clip, a per-region head) through the same `main.py` as
classification: checkpoints, resume, the workdir lock, metrics.jsonl, result.json with
frame-mAP@0.5 and video-mAP@0.2/0.5, `init_from` (a classification run of the same zoo model:
its trunk), data parallelism over every device. 1-3 actors per clip, each moving its own way;
the default is the tiny detector of `python -m video_s3d.detection.demo` (8-frame clips at 64
pixels, Mixed_3c features, Adam 1e-3, batch 8) for 1000 steps: frame-mAP@0.5 0.859 on the 24
validation videos, measured (README, "Spatio-temporal action detection").

Argument string: model=<zoo name> (default tiny_s3dg), runlocal (a smoke test: 4-frame clips at
32 pixels, 4 steps, 2 eval videos). The schema beyond classification's (experiments/
synthetic_motion.py documents the shared fields):
  task                  "detection"
  detector.*            ActionDetector's fields (feature_layer, anchors, proposals, head sizes)
  data.max_actors       ground-truth boxes per key frame (padding masked)
  data.eval_frame_stride  detect every k-th frame of an eval video (1: all, the protocol)
  data.max_eval_videos  evaluate on the first N videos of the split (0: all)
  max_detections        detections kept per frame after per-class NMS
  eval_sheet_videos     draw this many eval videos' detections to <workdir>/detections.png
"""

import ml_collections
from ml_collections import config_dict

from experiments import synthetic_motion
from video_s3d.config_cli import parse_arg
from video_s3d.detection import demo

# Classification's fields that mean the same for detection.
RUN_FIELDS = (
    "log_every_steps",
    "keep_checkpoints",
    "async_checkpointing",
    "seed",
    "sync_batch_norm",
    "init_from",
    "distributed",
    "cpu_fast_compile",
)


def detection_config(model: str) -> ml_collections.ConfigDict:
    """The fields every detection config has, set for the synthetic set's tiny detector; the
    optimiser and run fields are classification's (experiments/synthetic_motion.py)."""
    shared = synthetic_motion.get_config(f"model={model}")
    config = ml_collections.ConfigDict()
    config.task = "detection"
    config.model = ml_collections.ConfigDict({"name": model, "dtype": "float32"})
    config.detector = dict(demo.TINY_DETECTOR, proposal_nms_iou=0.7)

    config.data = ml_collections.ConfigDict()
    config.data.name = "synthetic_detection/detection_tiny"
    config.data.data_dir = config_dict.placeholder(str)
    config.data.train_split, config.data.eval_split = "train", "validation"
    config.data.num_frames, config.data.stride, config.data.crop_size = 8, 1, 64
    config.data.max_actors = 3
    config.data.flip = False  # "moving left" and "moving right" are classes
    config.data.eval_frame_stride = 1
    config.data.max_eval_videos = 0

    config.optim = shared.optim
    # Adam 1e-3 as the demo: AdamW without weight decay, constant.
    config.optim.update(name="adamw", learning_rate=1e-3, weight_decay=0.0)
    config.optim.update(schedule="constant", warmup_steps=0)
    for field in RUN_FIELDS:
        config[field] = shared[field]
    config.batch_size = config.eval_batch_size = 8
    config.max_detections = 20
    config.num_train_steps = 1000  # frame-mAP@0.5 0.30 after 300 steps, 0.86 after 1000
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 250
    config.cpu_fast_compile = False  # a long run: faster steps repay the slower compile
    config.precise_bn_batches = 4  # the demo needed them: stale running averages gave 0.000
    config.eval_sheet_videos = 4
    return config


def apply_runlocal(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A laptop smoke test on the generated set, whatever the config trains on for real:
    4-frame clips at 32 pixels, a smaller head, 4 steps, 2 eval videos (every 4th frame)."""
    config.model.name, config.init_from = "tiny_s3dg", ""
    smaller = dict(rpn_channels=16, head_channels=32, roi_size=2, pre_nms_proposals=32)
    config.detector = dict(demo.TINY_DETECTOR, proposal_nms_iou=0.7, num_proposals=8, **smaller)
    config.data.update(name="synthetic_detection/detection_tiny", flip=False, max_actors=3)
    config.data.update(train_split="train", eval_split="validation", num_frames=4, stride=1)
    config.data.update(crop_size=32, eval_frame_stride=4, max_eval_videos=2)
    config.batch_size = config.eval_batch_size = 8  # divides over the tests' 8 devices
    config.max_detections = 10
    config.num_train_steps, config.log_every_steps, config.checkpoint_every_steps = 4, 2, 2
    config.eval_every_steps = config.optim.warmup_steps = 0
    config.precise_bn_batches = config.eval_sheet_videos = 1
    config.cpu_fast_compile = True  # a few steps: compiling dominates
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = parse_arg(arg, model="tiny_s3dg", runlocal=False)
    config = detection_config(arg.model)
    return apply_runlocal(config) if arg.runlocal else config


# ------------------------------------------------------------ JHMDB and UCF101-24 (paper)
OURS = "not published; our choice"


def protocol_config(
    arg: ml_collections.ConfigDict, *, dataset: str, num_train_steps: int, max_actors: int
) -> ml_collections.ConfigDict:
    """The paper's detection experiment on a real dataset, as far as it is published (see
    experiments/jhmdb.py for what is and what is our choice); `arg`: the config file's parsed
    model, init_from, batch, runlocal and data (with runlocal: "synthetic" trains on
    synthetic_detection/detection_tiny, "real" keeps `dataset` at runlocal's tiny sizes)."""
    model, init_from, batch, runlocal = arg.model, arg.init_from, arg.batch, arg.runlocal
    if not init_from and not runlocal:
        raise ValueError(
            "Pass init_from=<workdir of a finished Kinetics classification run of the same "
            "model> in the config's argument string: the detector's trunk starts from it."
        )
    if arg.get("data", "synthetic") not in ("synthetic", "real"):
        raise ValueError(f"data={arg.data!r}: use data=synthetic or data=real (with runlocal).")
    config = detection_config(model)
    # The trunk and its input: S3D-G's classification input (ours: 32 frames, not its 64).
    config.detector.update(
        feature_layer="Mixed_4f",  # stride 16, 14x14 at 224 (ours: Faster R-CNN's C4-style)
        anchor_sizes=(0.1, 0.2, 0.4, 0.8),
        aspect_ratios=(0.5, 1.0, 2.0),
        rpn_channels=512,  # Faster R-CNN's VGG-16 RPN
        head_channels=1024,
        roi_size=7,  # Faster R-CNN's RoI pooling grid
        pre_nms_proposals=1000,
        num_proposals=300,  # Faster R-CNN's test-time proposals
    )
    config.data.update(
        name=dataset,
        train_split="train",
        eval_split="test",
        num_frames=32,
        stride=1,
        crop_size=224,
        max_actors=max_actors,
        flip=True,  # no left/right classes in either set
        eval_frame_stride=1,  # frame-mAP counts every annotated frame
        max_eval_videos=0,
    )
    config.batch_size = batch
    config.eval_batch_size = max(8, batch // 8 * 8)
    config.max_detections = 100
    config.optim.update(
        name="sgd",
        learning_rate=0.01 * batch / 16,  # ours: 0.01 at batch 16, linear in the batch
        momentum=0.9,
        weight_decay=1e-4,
        schedule="cosine",
        warmup_steps=200,
    )
    config.num_train_steps = num_train_steps
    config.log_every_steps = 50
    config.eval_every_steps = num_train_steps // 3
    config.checkpoint_every_steps = 500
    config.init_from = init_from
    config.precise_bn_batches = 8
    config.eval_sheet_videos = 4
    config.cpu_fast_compile = False
    if runlocal:
        real = {key: config.data[key] for key in ("name", "train_split", "eval_split")}
        apply_runlocal(config)
        if arg.get("data", "synthetic") == "real":  # the smoke test on the built real set
            config.data.update(real, max_actors=max_actors)
    return config
