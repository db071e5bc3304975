r"""The paper's Kinetics-400 rows: I3D, S3D and S3D-G with the same recipe.

  python -m launch.sweep --launcher=tpu_pod --sweep=experiments/sweeps/kinetics400.py \
      --workdir=gs://BUCKET/runs/k400 --data_dir=gs://BUCKET/tensorflow_datasets \
      --tpu=NAME --zone=ZONE --accelerator_type=v4-64
  python -m experiments.speed_accuracy --workdirs='gs://BUCKET/runs/k400/*' --out=out/k400

Argument string: seeds=<N> (default 1), batch=<global batch> (passed to the config),
runlocal (every run shrunk to a laptop smoke test).
"""

from experiments import runs
from video_s3d.config_cli import parse_arg

MODELS = ("i3d", "s3d", "s3dg")


def get_sweep(arg: str | None = None) -> list[runs.Run]:
    arg = parse_arg(arg, seeds=1, batch=0, runlocal=False)
    return runs.grid(
        "experiments/kinetics400.py",
        models=MODELS,
        seeds=range(arg.seeds),
        args=runs.config_items(batch=arg.batch or None, runlocal=arg.runlocal),
    )
