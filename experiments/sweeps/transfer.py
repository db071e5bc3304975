r"""UCF101 and HMDB51, each on its three official splits, fine-tuned from one Kinetics run.

  python -m launch.sweep --sweep=experiments/sweeps/transfer.py:init_from=runs/k400/s3dg-s0 \
      --workdir=runs/transfer
  python -m experiments.transfer --workdirs 'runs/transfer/*'  # the mean over splits

Argument string: init_from=<workdir of the Kinetics run> (required unless runlocal),
model=<its model> (default s3dg), seeds=<N> (default 1), splits=<e.g. 123> (default all
three, as papers average them), runlocal.
"""

from experiments import runs
from video_s3d.config_cli import parse_arg

DATASETS = ("ucf101", "hmdb51")


def get_sweep(arg: str | None = None) -> list[runs.Run]:
    arg = parse_arg(arg, init_from="", model="s3dg", seeds=1, splits="123", runlocal=False)
    if not arg.init_from and not arg.runlocal:
        raise ValueError(
            "Pass init_from=<workdir of a finished Kinetics run> in the sweep's argument string."
        )
    return [
        run
        for split in arg.splits
        for run in runs.grid(
            "experiments/transfer.py",
            models=(arg.model,),
            datasets=DATASETS,
            seeds=range(arg.seeds),
            args=runs.config_items(
                init_from=arg.init_from, split=int(split), runlocal=arg.runlocal
            ),
            prefix=f"split{split}-",
        )
    ]
