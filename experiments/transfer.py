r"""Fine-tuning a Kinetics-trained network on UCF101 or HMDB51 (the paper's transfer table).

  python -m video_s3d.main \
      --config=experiments/transfer.py:dataset=ucf101,model=s3dg,init_from=runs/k400/s3dg-s0 \
      --workdir=runs/transfer/ucf101_s3dg --config.data.data_dir=/data/tensorflow_datasets
  python -m launch.sweep --sweep=experiments/sweeps/transfer.py:init_from=runs/k400/s3dg-s0 \
      --workdir=runs/transfer

Argument string: dataset=ucf101|hmdb51 (default ucf101), model=<zoo name> (default s3dg;
must be the model of the init_from run), init_from=<workdir of a finished Kinetics run>
(required: every layer but the classifier starts from its last checkpoint), batch=<global
batch> (default 64, lr scales with it), runlocal (a laptop smoke test: tiny model, 2 steps
on the generated synthetic_motion/appearance_tiny dataset instead of the real one;
init_from may then name a runlocal Kinetics run or be left out to start from scratch).

Recipe (ours; the paper gives only the numbers): the Kinetics input recipe, SGD momentum
0.9 at lr 0.01 for batch 64 with cosine decay over about 30 epochs, BatchNorm statistics
kept from Kinetics (small datasets give noisy batch statistics), evaluation on three 64-frame
windows (about all frames of these 5-10 s videos) with a centre crop.
Paper (S3D-G, ImageNet+Kinetics pre-training, RGB): UCF101 96.8, HMDB51 75.9 top-1.
"""
import ml_collections

from experiments import recipes, synthetic_motion
from video_s3d.config_cli import parse_arg

# Training steps for ~30 epochs of split 1 (9,537 / 3,570 training videos) at batch 64.
STEPS = {"ucf101": 4500, "hmdb51": 1700}
BATCH_SIZE = 64
LEARNING_RATE = 0.01


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = parse_arg(arg, dataset="ucf101", model="s3dg", init_from="", batch=BATCH_SIZE,
                    runlocal=False)
    if arg.dataset not in STEPS:
        raise ValueError(f"dataset={arg.dataset} is not a transfer target; use one of "
                         f"{', '.join(STEPS)}.")
    if not arg.init_from and not arg.runlocal:
        raise ValueError("Pass init_from=<workdir of a finished Kinetics run> in the config's "
                         "argument string: transfer starts from a trained network.")
    recipes.check_model(arg.model)
    config = synthetic_motion.get_config()
    config.model.name = arg.model
    recipes.apply_paper_recipe(config, dataset=arg.dataset, batch_size=arg.batch,
                               num_train_steps=STEPS[arg.dataset])
    config.optim.learning_rate = LEARNING_RATE * (arg.batch / BATCH_SIZE)
    config.optim.schedule = "cosine"
    config.optim.warmup_steps = 100
    config.init_from = arg.init_from
    config.freeze_batch_norm = True
    config.data.eval_num_clips = 3
    config.eval_every_steps = 500
    if arg.runlocal:
        recipes.apply_runlocal(config, dataset="synthetic_motion/appearance_tiny")
    return config
