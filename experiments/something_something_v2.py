r"""Something-something v2 from scratch: classes that need the arrow of time.

  python -m video_s3d.main --config=experiments/something_something_v2.py:model=s3dg \
      --workdir=runs/ssv2_s3dg --config.data.data_dir=/data/tensorflow_datasets
  python -m launch.sweep --sweep=experiments/sweeps/something_something_v2.py --workdir=runs/ssv2

Argument string: model=<zoo name> (default s3dg; the paper compares i2d, i3d, s3dg),
batch=<global batch> (default 384, lr scales with it), runlocal (a laptop smoke test: tiny
model, 2 steps on the generated synthetic_motion/motion_tiny dataset, whose classes are
time-reversal pairs like many of Something-something's; the real dataset needs a manual
download, see the README's data section).

Recipe: the Kinetics recipe (experiments/recipes.py) with two changes. No horizontal flip:
the dataset forbids it ("pushing left to right" is a class of its own). Evaluation on one
64-frame window from the first frame: the videos last 2-6 s at 12 fps, so that window holds
(nearly) all of each. The time-reversed evaluation shows how much a model relies on frame
order; the paper's finding is that I2D, which cannot see it, falls far behind I3D and S3D-G.
"""
import ml_collections

from experiments import recipes, synthetic_motion
from video_s3d.config_cli import parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = parse_arg(arg, model="s3dg", batch=recipes.PAPER_BATCH_SIZE, runlocal=False)
    recipes.check_model(arg.model)
    config = synthetic_motion.get_config()
    config.model.name = arg.model
    # About 169k training videos: 40k steps at batch 384 are about 90 epochs.
    recipes.apply_paper_recipe(config, dataset="something_something_v2", batch_size=arg.batch,
                               num_train_steps=40_000)
    config.data.flip = False
    config.data.eval_num_clips = 0  # one window from frame 0 (see above)
    config.eval_every_steps = 5000
    if arg.runlocal:
        recipes.apply_runlocal(config)
    return config
