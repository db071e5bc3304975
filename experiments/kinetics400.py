r"""Kinetics-400 from scratch with the paper's recipe: I3D, S3D and S3D-G.

  python -m video_s3d.main --config=experiments/kinetics400.py:model=s3dg \
      --workdir=gs://BUCKET/runs/k400_s3dg --config.data.data_dir=gs://BUCKET/tensorflow_datasets
  # the three models on a TPU pod (or --launcher=slurm, or a local GPU with launch.sweep):
  python -m launch.sweep --launcher=tpu_pod --sweep=experiments/sweeps/kinetics400.py \
      --workdir=gs://BUCKET/runs/k400 --tpu=NAME --zone=ZONE --accelerator_type=v4-64

Argument string: model=<zoo name> (default s3dg; the paper's rows are i3d, s3d, s3dg),
batch=<global batch> (default 384; the learning rate scales with it from 0.1 at 384),
runlocal (a laptop smoke test: tiny model, 2 steps on the generated
synthetic_motion/motion_tiny dataset instead of Kinetics, which cannot be downloaded at
run time; prepare Kinetics first as the README's data section says).

Recipe (experiments/recipes.py): 64 consecutive frames, random 224 crops and flips, SGD
momentum 0.9 with lr 0.1 at batch 384 decayed x0.1 twice over 110k steps, L2 1e-7, dropout
0.2 before the logits, bfloat16 compute; evaluation on four 64-frame windows (all frames of
a 10 s clip) with a 224 centre crop, also time-reversed.
Paper, top-1/top-5: I3D 71.1/89.3, S3D 72.2/90.6, S3D-G 74.7/93.4.
"""
import ml_collections

from experiments import recipes, synthetic_motion
from video_s3d.config_cli import parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = parse_arg(arg, model="s3dg", batch=recipes.PAPER_BATCH_SIZE, runlocal=False)
    recipes.check_model(arg.model)
    config = synthetic_motion.get_config()
    config.model.name = arg.model
    recipes.apply_paper_recipe(config, dataset="kinetics400", batch_size=arg.batch)
    if arg.runlocal:
        recipes.apply_runlocal(config)
    return config
