"""Import pretrained weights into a workdir that `config.init_from` can start training from.

    # torchvision's Kinetics-400 S3D (https://download.pytorch.org/models/s3d-d76dad2f.pth)
    python -m video_s3d.import_weights --source=torchvision_s3d --path=s3d-d76dad2f.pth \
        --workdir=runs/imported/s3d_torchvision_k400
    # TF-Slim's ImageNet Inception-v1, inflated into S3D-G
    # (http://download.tensorflow.org/models/inception_v1_2016_08_28.tar.gz)
    python -m video_s3d.import_weights --source=slim_inception_v1 \
        --path=inception_v1_2016_08_28.tar.gz --model=s3dg --workdir=runs/imported/s3dg_imagenet
    # torchvision's ImageNet GoogLeNet (https://download.pytorch.org/models/googlenet-1378be20.pth)
    python -m video_s3d.import_weights --source=torchvision_googlenet --path=googlenet-1378be20.pth \
        --model=i3d --workdir=runs/imported/i3d_imagenet_tv
    # the same ImageNet weights for a flow network (2 input channels: x, y)
    python -m video_s3d.import_weights --source=slim_inception_v1 --modality=flow \
        --path=inception_v1_2016_08_28.tar.gz --model=s3dg --workdir=runs/imported/s3dg_imagenet_flow

The workdir is a complete run, like a training run's without optimiser state: config.json
(the model, the clip shape and the input normalisation the weights expect, in
`config.data.input_mean` / `input_std`) and checkpoints/0/{model, run} (`run` names the
model, the class count, the class names where the source publishes them, and where the
weights came from). So `predict`, `features`, `export` and `video_s3d.load` use it as it is,
`video_s3d.main --mode=eval` evaluates it, and `--config.init_from=runs/imported/...` (same
`--config.model.name`) fine-tunes from it.

--num_classes defaults to the source's own classifier (400 for Kinetics S3D, 1001 for
Slim's ImageNet model, 1000 for GoogLeNet's), kept as imported. Another count gives a
freshly initialised classifier (seeded by --seed); init_from replaces a classifier of the
wrong size anyway.

--modality=flow inflates the ImageNet sources into a flow network: the stem's RGB kernel is
averaged over its input channels and used for both flow channels (video_s3d.models.inflate;
the flow stream's ImageNet initialisation as issue 18 states it), everything else as for RGB;
the workdir's config.json is a flow run's (`data.modality = "flow"`, the flow input
normalisation), so a flow run can start from it. torchvision's S3D is an RGB Kinetics network
(no flow weights published with it): refused for flow.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from video_s3d import arguments
from video_s3d.errors import UserError, UserFileError

SOURCES = ("torchvision_s3d", "slim_inception_v1", "torchvision_googlenet")
DEFAULT_MODELS = {
    "torchvision_s3d": "s3d_torchvision",
    "slim_inception_v1": "s3dg",
    "torchvision_googlenet": "s3dg",
}
# The clip shape an imported run is used at. Not published with the weights; our choice:
# torchvision states S3D's cost (17.98 G multiply-adds) for 16x224x224 clips, and 224 is the
# crop of every source's recipe.
DEFAULT_NUM_FRAMES, DEFAULT_CROP_SIZE = 16, 224
# The dataset whose videos each source's classifier was trained on (predict decodes a file as
# that dataset stores its videos when it is built here; else at short side 256, as recorded).
SOURCE_DATASETS = {
    "torchvision_s3d": "kinetics400",
    "slim_inception_v1": "imagenet",
    "torchvision_googlenet": "imagenet",
}
MODALITIES = ("rgb", "flow")
KINETICS400_CLASSES = os.path.join(os.path.dirname(__file__), "interop", "kinetics400_classes.txt")


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.import_weights", __doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, choices=SOURCES)
    parser.add_argument(
        "--path",
        required=True,
        help="The .pth (torchvision) or the .tar.gz / .ckpt (TF-Slim) to import.",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="Target zoo model (default: s3d_torchvision for torchvision_s3d, else s3dg).",
    )
    parser.add_argument(
        "--num_classes",
        type=int,
        default=None,
        help="Classifier size (default: the source's; another size starts fresh).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of any freshly initialised leaf.")
    arguments.required(
        parser,
        parser.add_argument("--workdir", help="Run folder to create (must hold no checkpoints)."),
    )
    parser.add_argument(
        "--num_frames",
        type=int,
        default=DEFAULT_NUM_FRAMES,
        help="Frames per clip that predict / eval feed the model.",
    )
    parser.add_argument(
        "--crop_size",
        type=int,
        default=DEFAULT_CROP_SIZE,
        help="Square crop side that predict / eval feed the model.",
    )
    parser.add_argument(
        "--modality",
        default="rgb",
        choices=MODALITIES,
        help="rgb, or flow: inflate an ImageNet source into a 2-channel (x, y) flow network.",
    )
    arguments.alias(parser, "--out", "--workdir")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.num_frames, args.crop_size) < 1:
        parser.error("--num_frames and --crop_size must be positive.")
    return args


def _log(message: str) -> None:
    print(f"[import_weights] {message}", file=sys.stderr, flush=True)


def _fresh_classifier(variables: dict, num_classes: int, seed: int) -> dict:
    """The same variables with the classifier re-made for `num_classes` by the model's init."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from video_s3d.models.layers import default_kernel_init

    logits = variables["params"]["head"]["Logits"]
    shape = (*logits["kernel"].shape[:-1], num_classes)
    kernel = np.asarray(default_kernel_init(jax.random.key(seed), shape, jnp.float32))
    head = {"Logits": {"kernel": kernel, "bias": np.zeros((num_classes,), np.float32)}}
    return {**variables, "params": {**variables["params"], "head": head}}


def import_torchvision_s3d(
    path: str, model_name: str, num_classes: int | None, seed: int, in_channels: int = 3
):
    from video_s3d.interop import torchvision_s3d

    if in_channels != 3:
        raise UserError(
            "torchvision's S3D weights are an RGB Kinetics network (no flow weights are "
            "published with them); import them with --modality=rgb."
        )
    if model_name != torchvision_s3d.MODEL_NAME:
        raise UserError(
            f"torchvision's S3D weights fit only --model={torchvision_s3d.MODEL_NAME} "
            f"(its padding and BatchNorm), not {model_name!r}."
        )
    variables, source_classes = torchvision_s3d.load_variables(path)
    notes = {
        "input_normalization": {
            "range": "[0, 1]",
            "mean": torchvision_s3d.INPUT_MEAN,
            "std": torchvision_s3d.INPUT_STD,
        },
        "class_names": kinetics400_class_names(),
    }
    fresh = []
    if num_classes is not None and num_classes != source_classes:
        variables = _fresh_classifier(variables, num_classes, seed)
        fresh = ["params/head/Logits/kernel", "params/head/Logits/bias"]
    return variables, source_classes, fresh, notes


def import_slim_inception_v1(
    path: str, model_name: str, num_classes: int | None, seed: int, in_channels: int = 3
):
    from video_s3d.interop import slim_inception

    slim_inception.check_target(model_name)  # before the (slow) read
    tensors = slim_inception.read_checkpoint(path)
    flat, skipped = slim_inception.to_i2d(tensors)
    if skipped:
        _log(f"skipped {len(skipped)} bookkeeping variables: {', '.join(skipped[:5])}")
    i2d = slim_inception.i2d_variables(flat)
    variables, fresh = slim_inception.inflated_variables(
        i2d, model_name, num_classes or slim_inception.NUM_CLASSES, seed, in_channels
    )
    notes = {"input_normalization": {"range": "[-1, 1]"}, "inflated_from": "i2d"}
    return variables, slim_inception.NUM_CLASSES, fresh, notes


def import_torchvision_googlenet(
    path: str, model_name: str, num_classes: int | None, seed: int, in_channels: int = 3
):
    from video_s3d.interop import slim_inception, torchvision_googlenet

    slim_inception.check_target(model_name)
    i2d, source_classes, skipped = torchvision_googlenet.load_i2d(path)
    if skipped:
        _log(f"skipped {len(skipped)} auxiliary-classifier tensors (aux1.*, aux2.*)")
    variables, fresh = slim_inception.inflated_variables(
        i2d, model_name, num_classes or source_classes, seed, in_channels
    )
    notes = {"input_normalization": {"range": "[-1, 1]"}, "inflated_from": "i2d"}
    return variables, source_classes, fresh, notes


def kinetics400_class_names() -> list[str]:
    """torchvision's Kinetics-400 categories (`_KINETICS400_CATEGORIES` in torchvision/models/
    _meta.py), the order its S3D's classifier uses: alphabetical, as our Kinetics builder."""
    with open(KINETICS400_CLASSES, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def run_config(
    model_name: str,
    source: str,
    num_classes: int,
    normalization_fields: dict,
    num_frames: int,
    crop_size: int,
    modality: str = "rgb",
) -> dict:
    """The config.json of an imported run: the default config with this model, clip shape,
    modality and input normalisation, evaluated as one centre clip and crop (the sources
    publish no multi-view protocol for these weights; our choice)."""
    from experiments import synthetic_motion

    config = synthetic_motion.get_config()
    config.model.name = model_name
    config.model.dtype = "float32"
    config.data.name = SOURCE_DATASETS[source]
    config.data.num_classes = int(num_classes)
    config.data.num_frames = int(num_frames)
    config.data.crop_size = int(crop_size)
    config.data.stride = 1
    config.data.eval_num_clips = 1
    config.data.eval_num_crops = 1
    config.data.modality = modality
    config.sync_batch_norm = False
    config.init_from = ""
    return dict(config.to_dict(), data=dict(config.data.to_dict(), **normalization_fields))


IMPORTERS = {
    "torchvision_s3d": import_torchvision_s3d,
    "slim_inception_v1": import_slim_inception_v1,
    "torchvision_googlenet": import_torchvision_googlenet,
}


def write_workdir(out: str, variables: dict, run_info: dict) -> str:
    """checkpoints/0/{model, run} in `out`, as checkpointing.load_variables reads them."""
    import orbax.checkpoint as ocp

    from video_s3d import checkpointing

    ckpt = checkpointing.Checkpoints(out, keep=1, async_save=False)
    try:
        if ckpt.latest_step() is not None:
            raise UserError(f"{ckpt.directory} already holds checkpoints; pass a new --workdir.")
        ckpt.manager.save(
            0,
            args=ocp.args.Composite(
                model=ocp.args.StandardSave(variables),
                run=ocp.args.JsonSave(dict(run_info, step=0)),
            ),
            force=True,
        )
    finally:
        ckpt.close()
    return ckpt.directory


def run(args: argparse.Namespace) -> str:
    """Imports, checks and writes; returns the checkpoints folder."""
    from video_s3d import checkpointing, models, normalization

    model_name = args.model or DEFAULT_MODELS[args.source]
    models.get_spec(model_name)  # unknown name -> the list of valid ones, before any work
    if args.num_classes is not None and args.num_classes < 1:
        raise UserError(f"--num_classes must be positive, got {args.num_classes}.")
    flow = args.modality == "flow"
    if not os.path.exists(args.path) and not os.path.exists(args.path + ".index"):
        raise UserFileError(f"No file at --path={args.path}.")
    if os.path.isdir(os.path.join(args.workdir, "checkpoints")) and os.listdir(
        os.path.join(args.workdir, "checkpoints")
    ):
        raise UserError(f"{args.workdir} already holds checkpoints; pass a new --workdir.")
    start = time.time()
    _log(f"reading {args.path} ({args.source}) for {model_name}")
    variables, source_classes, fresh, notes = IMPORTERS[args.source](
        args.path, model_name, args.num_classes, args.seed, in_channels=2 if flow else 3
    )
    num_classes = int(variables["params"]["head"]["Logits"]["bias"].shape[0])
    if fresh:
        _log(
            f"freshly initialised (seed {args.seed}): {', '.join(fresh[:6])}"
            f"{f' and {len(fresh) - 6} more' if len(fresh) > 6 else ''}"
        )
    names = notes.pop("class_names", None)
    if names and len(names) == num_classes:
        notes["class_names"] = names
    info = {
        "model": model_name,
        "num_classes": num_classes,
        "dataset": f"imported:{args.source}",
        "source_path": os.path.abspath(args.path),
        "source_num_classes": source_classes,
        "fresh_leaves": fresh,
        "modality": args.modality,
        **notes,
    }
    recorded = notes["input_normalization"]  # torchvision's statistics, else [-1, 1]
    normalization_fields = (
        normalization.Normalization(tuple(recorded["mean"]), tuple(recorded["std"]))
        if "mean" in recorded
        else normalization.Normalization()
    ).to_config()
    if flow:  # the flow runs' own input map (normalization.from_config's flow default)
        normalization_fields = {}
    config = run_config(
        model_name,
        args.source,
        num_classes,
        normalization_fields,
        args.num_frames,
        args.crop_size,
        args.modality,
    )
    directory = write_workdir(args.workdir, variables, info)
    checkpointing.write_json(os.path.join(args.workdir, "config.json"), config)
    _log(
        f"wrote {directory}/0 ({model_name}, {num_classes} classes) in {time.time() - start:.0f}s; "
        f"train with --config.init_from={args.workdir} --config.model.name={model_name}"
    )
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from video_s3d import runtime

    runtime.quiet_library_notices()  # orbax asks for metrics on every save
    try:
        run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def cli() -> None:
    """The console script (pyproject.toml)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
