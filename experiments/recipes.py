"""What the paper-experiment configs share: the Kinetics training recipe and `runlocal`.

Every config starts from `experiments/synthetic_motion.py:get_config()` (the schema lives
there) and applies one of these, then changes the few fields its experiment needs.
"""
from __future__ import annotations

import ml_collections

from video_s3d.models import zoo

# The recipe's global batch: the I3D release ran 64 replicas x 6 clips.
PAPER_BATCH_SIZE = 384
PAPER_LEARNING_RATE = 0.1
# `runlocal` trains on the small generated motion set: real datasets cannot exist on a
# laptop or in CI, and its classes need the arrow of time like Something-something's.
RUNLOCAL_DATASET = "synthetic_motion/motion_tiny"


def apply_paper_recipe(config: ml_collections.ConfigDict, *, dataset: str,
                       batch_size: int = PAPER_BATCH_SIZE,
                       num_train_steps: int = 110_000) -> None:
    """Paper section 3 / the I3D release: 64 consecutive frames, 224 crops, synchronous SGD.

    The learning rate scales linearly with the global batch from 0.1 at 384, so a smaller
    machine can run the recipe with `batch=` in the config's argument string.
    """
    if batch_size <= 0:
        raise ValueError(f"batch={batch_size} must be a positive global batch size, e.g. batch=384.")
    config.data.name = dataset
    config.data.num_frames = 64      # densely sampled consecutive frames
    config.data.stride = 1
    config.data.crop_size = 224
    config.data.flip = None          # random flip wherever the dataset allows it
    config.data.train_crop = "paper"  # random 224x224 of the 256-short-side frames, no resize
    # "All frames at test": Kinetics clips are 10 s at 25 fps, four 64-frame windows cover them.
    config.data.eval_num_clips = 4
    config.data.eval_num_crops = 1   # centre crop
    config.model.dropout_rate = 0.2  # TF-Slim keep_prob 0.8 before the logits
    config.model.dtype = "bfloat16"  # parameters stay float32
    config.batch_size = batch_size
    config.eval_batch_size = batch_size // 2
    config.optim.name = "sgd"
    config.optim.momentum = 0.9
    config.optim.nesterov = False
    config.optim.learning_rate = PAPER_LEARNING_RATE * (batch_size / PAPER_BATCH_SIZE)
    config.optim.weight_decay = 1e-7  # L2, as in the I3D / S3D-G releases
    # Decayed x0.1 twice (I3D release); where exactly is not published: at 70% and 90%.
    config.optim.schedule = "step"
    config.optim.step_boundaries = (int(num_train_steps * 0.7), int(num_train_steps * 0.9))
    config.optim.step_decay_factor = 0.1
    # A short warm-up (our choice) keeps the first large-batch SGD steps from diverging.
    config.optim.warmup_steps = 1000
    config.num_train_steps = num_train_steps
    config.log_every_steps = 100
    config.eval_every_steps = 10_000
    config.checkpoint_every_steps = 1000
    config.reverse_time_eval = True


def apply_runlocal(config: ml_collections.ConfigDict, *, dataset: str = RUNLOCAL_DATASET) -> None:
    """Shrinks a config to run in seconds on a laptop CPU: the tiny twin of the model, the
    small generated dataset, 8 frames at 32x32, two steps, no warm-up."""
    if not config.model.name.startswith(zoo.TINY_PREFIX):
        config.model.name = zoo.TINY_PREFIX + config.model.name
    config.model.dtype = "float32"
    config.data.name = dataset
    config.data.num_frames = 8
    config.data.stride = 2
    config.data.crop_size = 32
    config.data.eval_num_clips = 1
    config.data.eval_num_crops = 1
    config.batch_size = 8
    config.eval_batch_size = 8
    config.optim.learning_rate = 0.05
    config.optim.warmup_steps = 0
    config.optim.step_boundaries = (1, 2)
    config.num_train_steps = 2
    config.log_every_steps = 1
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 2
    config.async_checkpointing = False


def check_model(name: str) -> None:
    """One sentence naming the choices when the argument string names no zoo model."""
    zoo.get_spec(name)
