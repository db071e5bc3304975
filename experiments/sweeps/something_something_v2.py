r"""Something-something v2: I2D (blind to frame order) against I3D and S3D-G.

  python -m launch.sweep --sweep=experiments/sweeps/something_something_v2.py --workdir=runs/ssv2
  python -m experiments.speed_accuracy --workdirs='runs/ssv2/*' --out=out/ssv2

Argument string: seeds=<N> (default 1), batch=<global batch>, runlocal.
"""

from experiments import runs
from video_s3d.config_cli import parse_arg

MODELS = ("i2d", "i3d", "s3dg")


def get_sweep(arg: str | None = None) -> list[runs.Run]:
    arg = parse_arg(arg, seeds=1, batch=0, runlocal=False)
    return runs.grid(
        "experiments/something_something_v2.py",
        models=MODELS,
        seeds=range(arg.seeds),
        args=runs.config_items(batch=arg.batch or None, runlocal=arg.runlocal),
    )
