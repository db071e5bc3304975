r"""The paper's action detection on JHMDB-21 (S3D-G trunk in a Faster R-CNN-style detector).

  python -m video_s3d.main \
      --config=experiments/jhmdb.py:split=1,model=s3dg,init_from=runs/k400/s3dg-s0 \
      --workdir=runs/jhmdb/split1_s3dg --config.data.data_dir=/data/tensorflow_datasets
  # a laptop smoke test on the generated synthetic_detection set:
  python -m video_s3d.main --config=experiments/jhmdb.py:runlocal --workdir=/tmp/jhmdb_smoke

Argument string: split=1|2|3 (the official splits; dataset `jhmdb/split<N>`), model=<zoo name>
(default s3dg; the init_from run's model), init_from=<workdir of a finished Kinetics
classification run> (required: the trunk starts from it), batch=<global batch> (default 16, the
learning rate scales with it), runlocal (tiny detector, 4 steps on
synthetic_detection/detection_tiny), data=synthetic|real (with runlocal; real: train
and evaluate at those tiny sizes on the built dataset itself, to smoke-test a build).

Protocol. Published, and followed (ISSUE 19 / REFERENCE.md "Action detection"; the standard
JHMDB protocol of Peng & Schmid, ECCV 2016 and ACT, ICCV 2017): 21 classes, the 3 official
splits (results averaged over them), actor boxes from the puppet masks, frame-mAP at IoU 0.5
over every annotated frame, video-mAP after linking. The paper's own detector settings (trunk
layer, clip length, RPN and head sizes, training schedule, RGB or two-stream) and its table's
numbers could not be read with the search tools (only the abstract: S3D-G transferred to JHMDB
and UCF101-24 detection, "new state of the art"), so every training field here is "not
published; our choice": 32-frame clips at 224 centred on the key frame, S3D-G cut at Mixed_4f,
Faster R-CNN's RPN (3 aspect ratios x 4 scales, 0.7 NMS, 300 proposals) and a two-layer 1024
head on 7x7 ROI-Align, SGD momentum 0.9 at lr 0.01 for batch 16 with cosine decay over 6000
steps (~4.5 epochs of split 1's ~22k annotated training frames), horizontal flips. No target
number is set until the paper's table is read.
"""

import ml_collections

from experiments import synthetic_detection
from video_s3d.config_cli import parse_arg

SPLITS = (1, 2, 3)
STEPS = 6000
# One actor per JHMDB video (its puppet): one ground-truth box per key frame.
MAX_ACTORS = 1


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = parse_arg(
        arg, split=1, model="s3dg", init_from="", batch=16, runlocal=False, data="synthetic"
    )
    if arg.split not in SPLITS:
        raise ValueError(f"split={arg.split} is not an official JHMDB split; use 1, 2 or 3.")
    return synthetic_detection.protocol_config(
        arg, dataset=f"jhmdb/split{arg.split}", num_train_steps=STEPS, max_actors=MAX_ACTORS
    )
