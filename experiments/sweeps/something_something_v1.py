r"""Something-something v1 (the paper's): I2D (blind to frame order) against I3D and S3D-G.

  python -m launch.sweep --sweep=experiments/sweeps/something_something_v1.py --workdir=runs/ssv1
  python -m experiments.speed_accuracy --workdirs='runs/ssv1/*' --out=out/ssv1

Argument string: seeds=<N> (default 1), batch=<global batch>, runlocal.
"""

from experiments import runs
from video_s3d.config_cli import parse_arg

MODELS = ("i2d", "i3d", "s3dg")


def get_sweep(arg: str | None = None) -> list[runs.Run]:
    arg = parse_arg(arg, seeds=1, batch=0, runlocal=False)
    return runs.grid(
        "experiments/something_something_v1.py",
        models=MODELS,
        seeds=range(arg.seeds),
        args=runs.config_items(batch=arg.batch or None, runlocal=arg.runlocal),
    )
