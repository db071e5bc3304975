r"""The synthetic reproduction at full tiny-model length: I2D, I3D, S3D, S3D-G on every task.

  python -m launch.sweep --sweep=experiments/sweeps/synthetic.py --workdir=runs/synthetic
  python -m experiments.speed_accuracy --workdirs='runs/synthetic/*' --out=out/synthetic

`motion` (classes in time-reversal pairs) against `appearance` (classes in what moves, not
how), `order` (which of two shapes comes first, in reversal pairs) and `flash_order` (which of
two flashing shapes flashes first, also in reversal pairs): a frame-order-blind
I2D should fail the ordered tasks between reversal partners only. Runs the default config
(experiments/synthetic_motion.py, 1000 steps each); experiments/paper_study.py runs a
shorter version of this plus the heavy sweep and reports the findings.

Argument string: seeds=<N> (default 1), runlocal (20 steps per run, smaller clips).
"""

from experiments import runs
from video_s3d.config_cli import parse_arg

MODELS = ("tiny_i2d", "tiny_i3d", "tiny_s3d", "tiny_s3dg")
TASKS = ("motion", "appearance", "order", "flash_order")


def get_sweep(arg: str | None = None) -> list[runs.Run]:
    arg = parse_arg(arg, seeds=1, runlocal=False)
    # synthetic_motion.py names its task argument `config`.
    return runs.grid(
        "experiments/synthetic_motion.py",
        models=MODELS,
        datasets=TASKS,
        dataset_key="config",
        seeds=range(arg.seeds),
        args=runs.config_items(runlocal=arg.runlocal),
    )
