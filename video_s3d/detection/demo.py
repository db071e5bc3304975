"""Train a tiny action detector on synthetic_detection clips on the CPU, and measure it.

    python -m video_s3d.detection.demo --steps=300 --out=/tmp/detection_demo

Clips come straight from the renderer (`synthetic_detection.make_clip`), so nothing is built or
downloaded. Prints progress (step, loss, rate, ETA), then frame-mAP@0.5 and video-mAP@0.2/0.5
of the untrained and the trained detector on held-out videos, and writes a contact sheet of the
trained detector's boxes (`detections.png`) when --out is given. The same detector trains
through `video_s3d.main` with `experiments/synthetic_detection.py`; this is the short,
dataset-free version.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import numpy as np
import optax

from video_s3d import arguments
from video_s3d.data.builders import synthetic_detection
from video_s3d.detection import draw, training
from video_s3d.detection.model import ActionDetector


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    trunk: str = "tiny_s3dg"
    feature_layer: str = "Mixed_3c"  # stride 8: an 8x8 grid at 64 pixels
    num_frames: int = 8
    image_size: int = 64
    max_actors: int = 3
    train_videos: int = 64
    eval_videos: int = 12
    batch_size: int = 8
    steps: int = 300
    learning_rate: float = 1e-3
    precise_bn_batches: int = 4
    seed: int = 0


# The synthetic objects' boxes span 0.2-0.6 of the frame and are roughly square; the tiny
# detector's other fields (experiments/synthetic_detection.py trains the same one).
TINY_DETECTOR = {
    "feature_layer": "Mixed_3c",  # stride 8: an 8x8 grid at 64 pixels
    "anchor_sizes": (0.25, 0.4, 0.6),
    "aspect_ratios": (1.0,),
    "rpn_channels": 64,
    "head_channels": 128,
    "roi_size": 4,
    "pre_nms_proposals": 128,
    "num_proposals": 16,
}


def make_model(config: DemoConfig) -> ActionDetector:
    fields = dict(TINY_DETECTOR, feature_layer=config.feature_layer)
    return ActionDetector(config.trunk, len(synthetic_detection.DETECTION_CLASSES), **fields)


def make_videos(config: DemoConfig, split: int, count: int) -> list[training.LabelledVideo]:
    videos = []
    for index in range(count):
        frames, labels, boxes = synthetic_detection.make_clip(
            (config.seed, split, index), config.num_frames, config.image_size, config.max_actors
        )
        videos.append(
            training.LabelledVideo(
                f"{split}_{index}", frames, labels, boxes, np.ones(boxes.shape[:2], bool)
            )
        )
    return videos


def sample_batch(videos, rng: np.random.Generator, config: DemoConfig):
    """Random videos, each with a random key frame and the clip centred on it."""
    clips, targets = [], []
    for index in rng.integers(len(videos), size=config.batch_size):
        video = videos[index]
        centre = int(rng.integers(len(video.frames)))
        clips.append(training.clip_around(video.frames, centre, config.num_frames))
        targets.append(
            training.keyframe_targets(
                video.labels, video.boxes, video.visible, centre, config.max_actors
            )
        )
    gt_boxes, gt_labels, gt_valid = (np.stack(t) for t in zip(*targets))
    return np.stack(clips), gt_boxes, gt_labels, gt_valid


def run(config: DemoConfig, log=print) -> dict:
    """Trains and evaluates; returns {'untrained': metrics, 'trained': metrics, 'state', ...}."""
    model = make_model(config)
    num_classes = len(synthetic_detection.DETECTION_CLASSES)
    optimizer = optax.adam(config.learning_rate)
    clip_shape = (config.num_frames, config.image_size, config.image_size, 3)
    state = training.init(model, jax.random.PRNGKey(config.seed), clip_shape, optimizer)
    train_videos = make_videos(config, 0, config.train_videos)
    eval_videos = make_videos(config, 1, config.eval_videos)
    detect = training.make_detect(model)
    batch_statistics = training.make_batch_statistics(model)

    def evaluate(state):
        # Precise BatchNorm statistics from training clips (a stream of its own), as for
        # classification: the running averages of a short run are stale.
        stats_rng = np.random.default_rng(config.seed + 1)
        batches = [
            sample_batch(train_videos, stats_rng, config)[0]
            for _ in range(config.precise_bn_batches)
        ]
        state = training.precise_batch_norm(batch_statistics, state, batches)
        return state, training.evaluate(
            detect, state, eval_videos, num_classes, config.num_frames, batch_size=config.batch_size
        )

    _, untrained = evaluate(state)
    log(f"untrained: frame-mAP@0.5 {untrained['frame_map@0.5']:.3f}")
    step_fn = training.make_train_step(model, optimizer)
    rng = np.random.default_rng(config.seed)
    start = time.time()
    for step in range(1, config.steps + 1):
        state, terms = step_fn(state, *sample_batch(train_videos, rng, config))
        if step == 1:
            jax.block_until_ready(terms)
            start = time.time()  # the rate leaves out compilation
        if step % 50 == 0 or step == config.steps:
            terms = {k: float(v) for k, v in terms.items()}
            rate = (step - 1) / max(time.time() - start, 1e-9)
            log(
                f"step {step}/{config.steps}  loss {terms['loss']:.3f}  "
                f"(rpn {terms['rpn_class']:.3f}/{terms['rpn_box']:.3f}, head "
                f"{terms['head_class']:.3f}/{terms['head_box']:.3f})  {rate:.2f} steps/s  "
                f"ETA {(config.steps - step) / max(rate, 1e-9):.0f}s"
            )
    state, trained = evaluate(state)
    log(
        f"trained: frame-mAP@0.5 {trained['frame_map@0.5']:.3f}  video-mAP@0.2 "
        f"{trained['video_map@0.2']:.3f}  @0.5 {trained['video_map@0.5']:.3f}"
    )
    return {
        "untrained": untrained,
        "trained": trained,
        "state": state,
        "detect": detect,
        "eval_videos": eval_videos,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.detection.demo", __doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=DemoConfig.steps)
    parser.add_argument("--model", default=DemoConfig.trunk, help="the detector's trunk")
    parser.add_argument("--seed", type=int, default=DemoConfig.seed)
    parser.add_argument("--out", default=None, help="folder for detections.png")
    arguments.alias(parser, "--trunk", "--model")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    config = DemoConfig(steps=args.steps, trunk=args.model, seed=args.seed)
    result = run(config)
    print("per-class frame-AP@0.5:", np.round(result["trained"]["frame_ap@0.5"], 3))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "detections.png")
        sheet = draw.video_sheet(
            result["detect"],
            result["state"],
            result["eval_videos"][:4],
            synthetic_detection.DETECTION_CLASSES,
            clip_length=config.num_frames,
        )
        draw.save_png(sheet, path)
        print("wrote", path)


if __name__ == "__main__":
    main()
