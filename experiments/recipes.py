"""The paper's training recipe, value for value with its source, and `runlocal`.

Every paper config starts from `experiments/synthetic_motion.py:get_config()` (the schema
lives there), applies `apply_paper_recipe`, then changes the few fields its experiment needs.
The recipe writes the paper's values and their sources into `config.recipe`, so a run's
config.json carries them beside its own, and `python -m video_s3d.recipe_card` (also printed
at the start of training) shows the two side by side with every difference flagged.

Sources (abbreviations used beside every number below):
  PAPER-IMPL  Xie et al., ECCV 2018 (arXiv 1712.04851), implementation paragraph: "optimized
              with a vanilla synchronous SGD algorithm with momentum of 0.9 and on 56 GPUs. We
              use batch of 6 per GPU, and train our model for 80k steps with an initial
              learning rate of 0.1. We decay the learning rate at step 60k to 0.01, and step
              70k to 0.001." (quoted word for word in the README of github.com/qijiezhao/
              s3d.pytorch; /work/shared/REFERENCE.md "Training recipe").
  PAPER-PROTO the paper's input protocol as summarised in REFERENCE.md ("Training recipe"):
              64 consecutive frames, short side 256, random 224 crop, random flip (not for
              direction-sensitive data), test on all frames with a 224 centre crop.
  PAPER-TAB   the paper's Kinetics-400 table (RGB, top-1/top-5): I3D 71.1/89.3, S3D 72.2/90.6,
              S3D-G 74.7/93.4 (REFERENCE.md "Numbers to hold"; S3D's row marked unverified
              there).
  I3D-README  github.com/deepmind/kinetics-i3d README: I3D 71.1/89.3 is ImageNet-inflated then
              Kinetics; from scratch 68.4/88.0.
Where the paper is silent the value says "not published; our choice: ...".
"""

from __future__ import annotations

import ml_collections

from video_s3d import recipe_card
from video_s3d.config_cli import parse_arg
from video_s3d.errors import UserError
from video_s3d.models import zoo

PAPER_IMPL = "PAPER-IMPL"
PAPER_PROTO = "PAPER-PROTO"
PAPER_TAB = "PAPER-TAB"
I3D_README = "I3D-README"
# The abbreviations above, printed under the recipe card.
LEGEND = (
    (
        PAPER_IMPL,
        "Xie et al. 2018, implementation paragraph, quoted word for word in the README "
        "of github.com/qijiezhao/s3d.pytorch (REFERENCE.md 'Training recipe')",
    ),
    (PAPER_PROTO, "Xie et al. 2018, input/test protocol (REFERENCE.md 'Training recipe')"),
    (PAPER_TAB, "Xie et al. 2018, Kinetics-400 table (REFERENCE.md 'Numbers to hold')"),
    (I3D_README, "github.com/deepmind/kinetics-i3d README"),
)

# PAPER-IMPL: 56 GPUs x batch 6.
PAPER_GPUS = 56
PAPER_PER_GPU_BATCH = 6
PAPER_BATCH_SIZE = PAPER_GPUS * PAPER_PER_GPU_BATCH  # 336
PAPER_LEARNING_RATE = 0.1  # PAPER-IMPL
PAPER_NUM_TRAIN_STEPS = 80_000  # PAPER-IMPL
PAPER_BOUNDARIES = (60_000, 70_000)  # PAPER-IMPL: 0.1 -> 0.01 at 60k, -> 0.001 at 70k
PAPER_DECAY_FACTOR = 0.1  # PAPER-IMPL (0.1 -> 0.01 -> 0.001)
PAPER_MOMENTUM = 0.9  # PAPER-IMPL
PAPER_NUM_FRAMES = 64  # PAPER-PROTO
PAPER_CROP_SIZE = 224  # PAPER-PROTO

# The one scaling rule for a global batch other than 336 (devices that do not divide 336:
# TPU slices of 32/64 cores, 8-GPU nodes). Not published; our choice, the linear scaling rule
# (Goyal et al. 2017, arXiv 1706.02677): the learning rate is linear in the global batch, and
# every step count (length, decay boundaries) is counted in examples seen, so the run sees
# 80k x 336 = 26.88M clips and decays at the same epochs as the paper's.
SCALING_RULE = (
    "lr = 0.1 x batch/336; steps and decay boundaries = paper's x 336/batch "
    "(same examples seen, decays at the same epoch)"
)

# `runlocal` trains on the small generated motion set: real datasets cannot exist on a
# laptop or in CI, and its classes need the arrow of time like Something-something's.
RUNLOCAL_DATASET = "synthetic_motion/motion_tiny"

# Rows of the paper's Kinetics-400 table: (top-1, top-5) with their source.
KINETICS_TARGETS = {
    "imagenet": {
        "i3d": (71.1, 89.3, f"{PAPER_TAB} and {I3D_README}"),
        "s3d": (72.2, 90.6, PAPER_TAB),
        "s3dg": (74.7, 93.4, PAPER_TAB),
    },
    "scratch": {"i3d": (68.4, 88.0, I3D_README)},  # S3D / S3D-G from scratch: not published
}
# Whether each row started from ImageNet. I3D: yes (I3D-README). S3D / S3D-G: we could not
# verify it in the paper's text with the search tools; our choice: ImageNet as well, so the
# three rows start alike and are compared with I3D's ImageNet-initialised 71.1.
IMAGENET_INIT_SOURCE = {
    "i3d": I3D_README,
    "s3d": "not verified in the paper's text; our choice: ImageNet, as the I3D row it is "
    "compared with",
    "s3dg": "not verified in the paper's text; our choice: ImageNet, as the I3D row it is "
    "compared with",
}
INITS = ("imagenet", "scratch")


def scaled(
    batch_size: int,
    steps: int = PAPER_NUM_TRAIN_STEPS,
    boundaries=PAPER_BOUNDARIES,
    learning_rate: float = PAPER_LEARNING_RATE,
) -> dict:
    """SCALING_RULE (video_s3d.recipe_card.scale_to_batch) at a global batch."""
    rule = recipe_card.scale_to_batch(
        batch_size,
        PAPER_BATCH_SIZE,
        learning_rate=learning_rate,
        num_train_steps=steps,
        step_boundaries=boundaries,
    )
    return {
        "learning_rate": rule["optim.learning_rate"],
        "num_train_steps": rule["num_train_steps"],
        "step_boundaries": rule["optim.step_boundaries"],
    }


def _row(field: str, paper, source: str) -> tuple:
    return (field, paper, source)


def apply_paper_recipe(
    config: ml_collections.ConfigDict,
    *,
    dataset: str,
    name: str,
    batch_size: int = PAPER_BATCH_SIZE,
    num_train_steps: int = PAPER_NUM_TRAIN_STEPS,
    boundaries=PAPER_BOUNDARIES,
    steps_source: str = PAPER_IMPL,
) -> None:
    """The paper's recipe at `batch_size` (scaled by SCALING_RULE when it is not 336).

    `num_train_steps` / `boundaries` are the values at batch 336 (the Kinetics ones by
    default) and `steps_source` says where they come from.
    """
    schedule = scaled(batch_size, num_train_steps, boundaries)
    config.data.name = dataset
    config.data.num_frames = PAPER_NUM_FRAMES  # densely sampled consecutive frames
    config.data.stride = 1
    config.data.crop_size = PAPER_CROP_SIZE
    config.data.flip = None  # random flip wherever the dataset allows it
    # Read by the train pipeline (data/pipeline.py, issue 16 item 5): a fixed 224 crop of the
    # 256-short-side frames, no resize; "random_resized" is the older scale-jittered crop.
    config.data.train_crop = "paper"
    # Clips shorter than the window repeat their last frame (never jump back to frame 0).
    config.data.short_clip = "repeat_last"
    # PAPER-PROTO: every frame of each video in one pass, 224 centre crop. Multi-clip (four
    # 64-frame windows, centre crop) is reported beside it in result.json.
    config.data.eval_protocols = ("all_frames", "multi_clip")
    config.data.eval_num_clips = 4
    config.data.eval_num_crops = 1  # centre crop
    config.model.dropout_rate = 0.2  # not published; our choice: TF-Slim keep_prob 0.8
    config.model.dtype = "bfloat16"  # parameters stay float32
    config.batch_size = batch_size
    config.eval_batch_size = max(8, batch_size // 2 // 8 * 8)
    config.optim.name = "sgd"
    config.optim.momentum = PAPER_MOMENTUM
    config.optim.nesterov = False
    config.optim.learning_rate = schedule["learning_rate"]
    config.optim.weight_decay = 1e-7  # not published; our choice: the I3D / S3D-G TF releases
    config.optim.schedule = "step"
    config.optim.step_boundaries = schedule["step_boundaries"]
    config.optim.step_decay_factor = PAPER_DECAY_FACTOR
    config.optim.warmup_steps = 0  # PAPER-IMPL mentions none
    config.num_train_steps = schedule["num_train_steps"]
    config.log_every_steps = 100
    config.eval_every_steps = 10_000
    config.checkpoint_every_steps = 1000
    config.reverse_time_eval = True

    config.recipe = ml_collections.ConfigDict()
    config.recipe.name = name
    config.recipe.scaling_rule = SCALING_RULE
    config.recipe.legend = LEGEND
    config.recipe.reference_batch_size = PAPER_BATCH_SIZE
    # (config field, the paper's value at batch 336, source). The card compares these with
    # the resolved config, and for the batch-dependent ones also with SCALING_RULE's values.
    config.recipe.rows = (
        _row("batch_size", PAPER_BATCH_SIZE, PAPER_IMPL + ": 56 GPUs x 6 per GPU"),
        _row("num_train_steps", num_train_steps, steps_source),
        _row("optim.name", "sgd", PAPER_IMPL + ": synchronous SGD"),
        _row("optim.momentum", PAPER_MOMENTUM, PAPER_IMPL),
        _row("optim.nesterov", False, PAPER_IMPL + ": vanilla"),
        _row("optim.learning_rate", PAPER_LEARNING_RATE, PAPER_IMPL),
        _row("optim.schedule", "step", PAPER_IMPL),
        _row("optim.step_boundaries", tuple(boundaries), steps_source),
        _row("optim.step_decay_factor", PAPER_DECAY_FACTOR, PAPER_IMPL + ": 0.1->0.01->0.001"),
        _row("optim.warmup_steps", 0, PAPER_IMPL + ": none mentioned"),
        _row("optim.weight_decay", None, "not published; our choice: 1e-7, I3D/S3D-G TF code"),
        _row("model.dropout_rate", None, "not published; our choice: 0.2, TF-Slim keep 0.8"),
        _row("data.num_frames", PAPER_NUM_FRAMES, PAPER_PROTO),
        _row("data.stride", 1, PAPER_PROTO + ": consecutive frames"),
        _row("data.crop_size", PAPER_CROP_SIZE, PAPER_PROTO),
        _row("data.train_crop", "paper", PAPER_PROTO + ": 224 crop of short side 256"),
        _row("data.eval_protocols", "all_frames", PAPER_PROTO + ": all frames, centre"),
    )
    config.recipe.init = "scratch"
    config.recipe.paper_init = "scratch"
    config.recipe.paper_init_source = "not published; our choice: scratch"
    config.recipe.targets = ""


def apply_init(config: ml_collections.ConfigDict, *, model: str, init: str, imagenet: str) -> None:
    """`init=imagenet`: start from TF-Slim's ImageNet Inception-v1 inflated into `model`
    (a workdir `python -m video_s3d.import_weights --source=slim_inception_v1` wrote), via
    config.init_from; `init=scratch`: the model's own initialisers. Sets the targets the run
    is compared with: a from-scratch run quotes from-scratch numbers only."""
    if init not in INITS:
        raise UserError(f"init={init} is unknown; use one of {', '.join(INITS)}.")
    config.recipe.init = init
    config.recipe.paper_init = "imagenet" if model in IMAGENET_INIT_SOURCE else "not published"
    config.recipe.paper_init_source = IMAGENET_INIT_SOURCE.get(
        model, "the paper's table has no such row"
    )
    if init == "imagenet":
        config.init_from = imagenet or imagenet_workdir(model)
        config.init_hint = imagenet_hint(model, config.init_from)
    target = KINETICS_TARGETS[init].get(model)
    config.recipe.targets = (
        f"Kinetics-400 top-1/top-5 {target[0]}/{target[1]} ({target[2]})"
        if target
        else f"none published for {model} with init={init}"
    )


def imagenet_workdir(model: str, modality: str = "rgb") -> str:
    """Where the README's import command puts the inflated ImageNet weights for `model`
    (`_flow`: inflated into the 2-channel flow network)."""
    return f"runs/imported/{model}_imagenet" + ("_flow" if modality == "flow" else "")


def imagenet_hint(model: str, out: str, modality: str = "rgb") -> str:
    """How to make the ImageNet workdir `out` that config.init_from names."""
    flag = " --modality=flow" if modality == "flow" else ""
    return (
        f"make it with: python -m video_s3d.import_weights --source=slim_inception_v1{flag} "
        f"--path=inception_v1_2016_08_28.tar.gz --model={model} --out={out} "
        f"(the tarball: http://download.tensorflow.org/models/inception_v1_2016_08_28.tar.gz),"
        f" or train from scratch with init=scratch in the config's argument string"
    )


def apply_runlocal(config: ml_collections.ConfigDict, *, dataset: str = RUNLOCAL_DATASET) -> None:
    """Shrinks a config to run in seconds on a laptop CPU: the tiny twin of the model, the
    small generated dataset, 8 frames at 32x32, two steps, from scratch (the tiny models have
    no ImageNet twin). Keeps config.recipe, so the card shows how far this is from the paper."""
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
    if "recipe" in config:
        config.recipe.targets = "none: a runlocal smoke test, not the paper's experiment"
        if config.recipe.init == "imagenet":
            config.recipe.init = "scratch"
            config.init_from = ""


def something_something_config(
    arg: str | None,
    *,
    dataset: str,
    steps: int,
    boundaries: tuple[int, int],
    steps_source: str,
    default_init: str,
    init_source: str,
    targets: str,
    name: str,
) -> ml_collections.ConfigDict:
    """A Something-something config (v1 or v2; each file's docstring gives its reasons): the
    paper's Kinetics recipe with the dataset's own schedule, no horizontal flip (left/right is
    part of the classes), short clips spread over the window and evaluation every 5k steps.

    `arg`: model=<zoo name> (default s3dg), batch=<global batch>, init=imagenet|scratch
    (default `default_init`), imagenet=<workdir>, runlocal. `name` may use {model}.
    """
    from experiments import synthetic_motion  # the schema every paper config starts from

    arg = parse_arg(
        arg, model="s3dg", batch=PAPER_BATCH_SIZE, init=default_init, imagenet="", runlocal=False
    )
    check_model(arg.model)
    config = synthetic_motion.get_config()
    config.model.name = arg.model
    apply_paper_recipe(
        config,
        dataset=dataset,
        batch_size=arg.batch,
        num_train_steps=steps,
        boundaries=boundaries,
        steps_source=steps_source,
        name=name.format(model=arg.model),
    )
    apply_init(config, model=arg.model, init=arg.init, imagenet=arg.imagenet)
    config.recipe.paper_init = "not published"
    config.recipe.paper_init_source = init_source
    config.recipe.targets = targets
    config.data.flip = False
    config.data.short_clip = "spread"
    config.eval_every_steps = 5000
    if arg.runlocal:
        apply_runlocal(config)
    return config


def apply_flow(config: ml_collections.ConfigDict) -> None:
    """The Flow row of a config: the dataset's flow twin (TV-L1, 2 channels) instead of RGB.

    Call after apply_init / apply_runlocal: it renames the dataset they set (e.g. kinetics400 ->
    kinetics400/flow, ucf101/split1 -> ucf101/split1_flow). With init=imagenet the run starts
    from the ImageNet weights inflated into the flow network (stem kernel averaged over RGB,
    issue 18: `import_weights --modality=flow`), by default from imagenet_workdir(model, "flow").
    """
    if config.get("recipe") and config.recipe.init == "imagenet":
        model = config.model.name
        if config.init_from == imagenet_workdir(model):  # the default: its flow twin
            config.init_from = imagenet_workdir(model, "flow")
        config.init_hint = imagenet_hint(model, config.init_from, "flow")
    name = config.data.name
    config.data.name = f"{name}_flow" if "/" in name else f"{name}/flow"
    config.data.modality = "flow"
    if config.get("recipe"):
        config.recipe.name = f"{config.recipe.name}, Flow stream"


def check_model(name: str) -> None:
    """One sentence naming the choices when the argument string names no zoo model."""
    zoo.get_spec(name)
