r"""Default config: a tiny video network on the generated synthetic_motion dataset.

Run (16 frames at 48x48 for 1000 steps: tens of minutes on a CPU, minutes on a GPU; the
dataset is generated on first use; `python -m experiments.quickstart` is the short version):

  python -m video_s3d.main --config=experiments/synthetic_motion.py:model=tiny_s3dg \
      --workdir=runs/synthetic_motion/tiny_s3dg

Argument string (after ':', comma-separated): model=<models.names()>, config=motion|appearance|
order|flash_order|far_flash_order (which synthetic task; `_tiny` ones too; far_flash_order
clips are 69 frames: set data.num_frames=69, data.stride=1), modality=rgb|flow (flow: the
task's TV-L1 flow twin, e.g. synthetic_motion/motion_flow, and a 2-channel model), runlocal
(shrink everything for a smoke test on a laptop), in_memory (random clips generated in memory
instead of the dataset: measures compute only).
Any field below can also be overridden: --config.optim.learning_rate=0.05.

Schema (every run reads exactly these fields):
  model.name            zoo name (video_s3d.models.names())
  model.dtype           compute dtype 'float32' | 'bfloat16' (parameters stay float32)
  model.dropout_rate    dropout before the logits
  model.remat           rematerialise Inception blocks in the backward pass (saves memory)
  model.kernel_init     conv initialiser: 'tf_slim' (stddev 0.01) | 'he' (fan-in scaled) |
                        'he_centre' (He at a 3D kernel's centre tap, zeros at the others)
  data.name             TFDS name 'synthetic_motion/<config>', another dataset, or 'in_memory'
  data.modality         'rgb' | 'flow': what the dataset stores (flow: TV-L1, 2 channels)
  data.data_dir         TFDS data folder (None: the library default)
  data.train_split / eval_split
  data.num_frames, stride, crop_size   clip: frames, frame step, square crop side (pixels)
  data.flip             random horizontal flip in training (None: the dataset's default)
  data.eval_num_clips / eval_num_crops  views per video at evaluation (averaged per video)
  data.num_classes / num_eval_videos   only for data.name='in_memory'
  batch_size            GLOBAL training batch (split over every device of every process)
  eval_batch_size       GLOBAL evaluation batch
  optim.name            'sgd' (momentum, coupled L2) | 'adamw' (decoupled decay)
  optim.learning_rate, momentum, nesterov, weight_decay
  optim.decay_bn_and_bias  also decay BatchNorm parameters and biases
  optim.schedule        'cosine' | 'step' | 'constant', after optim.warmup_steps of linear warm-up
  optim.step_boundaries, step_decay_factor   for 'step': absolute steps, multiplier at each
  optim.grad_clip_norm  global-norm clipping (0: off)
  optim.off_centre_delay_steps, off_centre_ramp_steps   3D kernels' off-centre temporal taps
                        held still, then their learning rate ramped in linearly
  label_smoothing       0 = one-hot targets
  num_train_steps, log_every_steps, eval_every_steps (0: only at the end), checkpoint_every_steps
  keep_checkpoints      newest K kept (the best by validation video top-1 is kept as well)
  async_checkpointing   write checkpoints in the background
  seed                  init, dropout and data order
  sync_batch_norm       BatchNorm statistics over the global batch (else per device, averaged)
  init_from             workdir of a run to fine-tune from (its head is replaced if the class
                        count differs); freeze_batch_norm keeps its BN statistics fixed
  reverse_time_eval     also evaluate with the frames reversed in time
  precise_bn_batches    before each evaluation, replace BN running averages by the average
                        over this many training batches (0: off; needed for short runs)
  distributed           call jax.distributed.initialize() (cluster auto-detection)
  cpu_fast_compile      on CPU, compile with XLA backend optimisation level 0: 2-3x faster
                        compiles but ~2.3x slower steps (measured); turn off for long runs
"""

import ml_collections
from ml_collections import config_dict

from video_s3d.config_cli import parse_arg
from video_s3d.errors import UserError


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = parse_arg(
        arg, model="tiny_s3dg", config="motion", modality="rgb", runlocal=False, in_memory=False
    )
    config = ml_collections.ConfigDict()

    config.model = ml_collections.ConfigDict()
    config.model.name = arg.model
    config.model.dtype = "float32"
    config.model.dropout_rate = 0.2
    config.model.remat = False
    # Conv kernels' initialiser: 'tf_slim' (stddev 0.01, the reference) | 'he' (fan-in scaled).
    config.model.kernel_init = "tf_slim"

    config.data = ml_collections.ConfigDict()
    if arg.modality not in ("rgb", "flow"):
        raise UserError(f"modality={arg.modality!r}: use modality=rgb or modality=flow.")
    flow_suffix = "_flow" if arg.modality == "flow" else ""
    config.data.name = (
        "in_memory" if arg.in_memory else f"synthetic_motion/{arg.config}{flow_suffix}"
    )
    config.data.modality = arg.modality
    config.data.data_dir = config_dict.placeholder(str)
    config.data.train_split = "train"
    config.data.eval_split = "validation"
    config.data.num_frames = 16
    config.data.stride = 2
    config.data.crop_size = 48
    config.data.flip = config_dict.placeholder(bool)
    # "random_resized" (random area and aspect, resized) or "paper" (a crop_size square of the
    # stored frames, no resize: the paper configs' choice); see video_s3d/data/pipeline.py.
    config.data.train_crop = "random_resized"
    # Videos shorter than the window: "repeat_last" | "spread"; None: the dataset's default.
    config.data.short_clip = config_dict.placeholder(str)
    config.data.eval_num_clips = 1
    config.data.eval_num_crops = 1
    config.data.num_classes = 10
    config.data.num_eval_videos = 64

    config.batch_size = 32
    config.eval_batch_size = 64

    config.optim = ml_collections.ConfigDict()
    config.optim.name = "sgd"
    config.optim.learning_rate = 0.1
    config.optim.momentum = 0.9
    config.optim.nesterov = False
    config.optim.weight_decay = 1e-4
    config.optim.decay_bn_and_bias = False
    config.optim.schedule = "cosine"
    config.optim.warmup_steps = 50
    config.optim.step_boundaries = (600, 900)
    config.optim.step_decay_factor = 0.1
    config.optim.grad_clip_norm = 0.0
    # 3D kernels' off-centre temporal taps held still for the first delay steps, then their
    # learning rate ramped in linearly (0, 0: they learn from the start like every weight).
    config.optim.off_centre_delay_steps = 0
    config.optim.off_centre_ramp_steps = 0

    config.label_smoothing = 0.0
    config.num_train_steps = 1000
    config.log_every_steps = 50
    config.eval_every_steps = 250
    config.checkpoint_every_steps = 250
    config.keep_checkpoints = 2
    config.async_checkpointing = True
    config.seed = 0
    config.sync_batch_norm = True
    config.init_from = ""
    config.freeze_batch_norm = False
    config.reverse_time_eval = True
    # BN decay 0.999 needs thousands of steps to forget its initial statistics; re-estimate
    # them from this many training batches before each evaluation (0: off).
    config.precise_bn_batches = 8
    config.distributed = False
    # Fast compiles suit tests and smoke runs; a long CPU run should pass
    # --config.cpu_fast_compile=False (2.3x faster steps; the quickstart and paper_study do).
    config.cpu_fast_compile = True

    if arg.runlocal:
        config.data.num_frames = 8
        config.data.crop_size = 32
        config.batch_size = 16
        config.eval_batch_size = 16
        config.num_train_steps = 20
        config.log_every_steps = 5
        config.eval_every_steps = 0
        config.checkpoint_every_steps = 10
        config.optim.warmup_steps = 5
        config.precise_bn_batches = 0  # one program less to compile for a smoke test
    return config
