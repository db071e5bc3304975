r"""Bottom-heavy and top-heavy networks at every cut point, with both ends (I2D and I3D / S3D).

  python -m launch.sweep --sweep=experiments/sweeps/heavy.py:data_dir=/data/mini_k200_tfds \
      --workdir=runs/heavy
  python -m experiments.speed_accuracy --workdirs='runs/heavy/*' --out=out/heavy

Argument string: family=i3d|s3d (default i3d: the paper's figure), step=<k> (default 1: every
cut 1..9; 2 gives 2,4,6,8), data_dir=<Mini-Kinetics TFDS folder> (required unless runlocal),
seeds=<N>, runlocal. The cut k counts the layers below the cut (video_s3d/models/zoo.py):
top_heavy_i3d_k is 2D below it and 3D above, bottom_heavy_i3d_k the mirror; k=0 and k=10 are
I2D and I3D themselves, run once each under those names.
"""

from experiments import runs
from video_s3d.config_cli import parse_arg
from video_s3d.models import zoo

FAMILIES = ("i3d", "s3d")


def models(family: str, step: int) -> list[str]:
    if family not in FAMILIES:
        raise ValueError(f"family={family} is unknown; use one of {', '.join(FAMILIES)}.")
    if not 1 <= step < len(zoo.SWEEP_CUTS) - 1:
        raise ValueError(f"step={step} must be between 1 and {len(zoo.SWEEP_CUTS) - 2}.")
    inner_cuts = zoo.SWEEP_CUTS[1:-1][step - 1 :: step]
    return (
        ["i2d", family]
        + [f"bottom_heavy_{family}_{k}" for k in inner_cuts]
        + [f"top_heavy_{family}_{k}" for k in inner_cuts]
    )


def get_sweep(arg: str | None = None) -> list[runs.Run]:
    arg = parse_arg(arg, family="i3d", step=1, data_dir="", seeds=1, runlocal=False)
    if not arg.data_dir and not arg.runlocal:
        raise ValueError(
            "Pass data_dir=<TFDS folder of the Mini-Kinetics build> in the sweep's "
            "argument string (see experiments/mini_kinetics.py)."
        )
    return runs.grid(
        "experiments/mini_kinetics_heavy.py",
        models=models(arg.family, arg.step),
        seeds=range(arg.seeds),
        args=runs.config_items(data_dir=arg.data_dir, runlocal=arg.runlocal),
    )
