r"""Kinetics-400 with the paper's recipe: the I3D, S3D and S3D-G rows of its Kinetics table.

  python -m video_s3d.recipe_card --config=experiments/kinetics400.py:model=s3dg   # no training
  python -m video_s3d.main --config=experiments/kinetics400.py:model=s3dg \
      --workdir=gs://BUCKET/runs/k400_s3dg --config.data.data_dir=gs://BUCKET/tensorflow_datasets
  # the three rows on a TPU pod (or --launcher=slurm, or a local GPU with launch.sweep):
  python -m launch.sweep --launcher=tpu_pod --sweep=experiments/sweeps/kinetics400.py \
      --workdir=gs://BUCKET/runs/k400 --tpu=NAME --zone=ZONE --accelerator_type=v4-64

Argument string: model=<zoo name> (default s3dg; the paper's rows are i3d, s3d, s3dg),
batch=<global batch> (default 336 = the paper's 56 GPUs x 6; another batch scales lr, steps
and decay boundaries by the one rule in video_s3d/recipe_card.py), init=imagenet|scratch
(default imagenet: TF-Slim's ImageNet Inception-v1 inflated, as I3D's row; scratch quotes
from-scratch targets), imagenet=<workdir of the inflated weights> (default
runs/imported/<model>_imagenet, made by `python -m video_s3d.import_weights
--source=slim_inception_v1 --model=<model> --out=...`), runlocal (a laptop smoke test:
tiny model from scratch, 2 steps on the generated synthetic_motion/motion_tiny dataset),
modality=rgb|flow (flow: the Flow row, on kinetics400/flow, needs init=scratch).

Recipe (experiments/recipes.py, every number with its source): synchronous SGD momentum 0.9,
global batch 336, 80k steps, lr 0.1 decayed x0.1 at 60k and 70k, no warm-up (paper,
implementation paragraph); 64 consecutive frames, 224 crop of 256-short-side frames, flip;
test on all frames with a 224 centre crop, four 64-frame windows reported beside it.
Targets, top-1/top-5 (paper's Kinetics-400 table): I3D 71.1/89.3, S3D 72.2/90.6,
S3D-G 74.7/93.4 (ImageNet-initialised; I3D from scratch: 68.4/88.0, kinetics-i3d README).
"""

import ml_collections

from experiments import recipes, synthetic_motion
from video_s3d.config_cli import parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = parse_arg(
        arg,
        model="s3dg",
        batch=recipes.PAPER_BATCH_SIZE,
        init="imagenet",
        imagenet="",
        runlocal=False,
        modality="rgb",
    )
    recipes.check_model(arg.model)
    config = synthetic_motion.get_config()
    config.model.name = arg.model
    recipes.apply_paper_recipe(
        config,
        dataset="kinetics400",
        batch_size=arg.batch,
        name=f"Kinetics-400 {arg.model} (paper's Kinetics-400 table)",
    )
    recipes.apply_init(config, model=arg.model, init=arg.init, imagenet=arg.imagenet)
    if arg.runlocal:
        recipes.apply_runlocal(config)
    if arg.modality == "flow":
        recipes.apply_flow(config)
    elif arg.modality != "rgb":
        raise ValueError(f"modality={arg.modality}: use rgb or flow.")
    return config
