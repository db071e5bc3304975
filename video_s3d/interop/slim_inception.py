"""TF-Slim Inception-v1 ImageNet checkpoint -> i2d variables -> an inflated 3D initialisation.

Where to get it: TF-Slim's README ("Pre-trained Models") lists
http://download.tensorflow.org/models/inception_v1_2016_08_28.tar.gz, which holds one file,
`inception_v1.ckpt` (a V1 checkpoint; 1001 classes, class 0 = background; inputs in
[-1, 1], as this project's). Pass the .tar.gz itself, the extracted .ckpt, or the prefix
of a V2 checkpoint (`model.ckpt-N` beside its .index).

Names (TF-Slim nets/inception_v1.py): `InceptionV1/<layer>/weights` [kh, kw, in, out] and
`InceptionV1/<layer>/BatchNorm/{beta, moving_mean, moving_variance}` (no gamma: Slim's
Inception arg scope has batch_norm_scale=False, exactly our 'tf_slim' BN); layers
Conv2d_1a_7x7, Conv2d_2b_1x1, Conv2d_2c_3x3 and Mixed_*/Branch_{0..3}/Conv2d_0{a,b}_*.
Slim's Mixed_5b names its Branch_2 3x3 conv `Conv2d_0a_3x3` (every other block
`Conv2d_0b_3x3`); Slim's "5x5" branch is 3x3, as ours. The classifier is
`InceptionV1/Logits/Conv2d_0c_1x1/{weights, biases}`.
"""

from __future__ import annotations

import os
import re
import tarfile
import tempfile
from typing import Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np

from video_s3d.errors import UserError, UserFileError
from video_s3d.interop import variables as variables_lib
from video_s3d.models.layers import default_kernel_init
from video_s3d.models.spec import INCEPTION_CHANNELS, LAYER_NAMES

DOWNLOAD_URL = "http://download.tensorflow.org/models/inception_v1_2016_08_28.tar.gz"
SCOPE = "InceptionV1"
NUM_CLASSES = 1001
# Variables that are not the network (training bookkeeping); skipped and reported.
_BOOKKEEPING = re.compile(r"(^|/)(global_step|ExponentialMovingAverage)$")
_STEM = {"Conv2d_1a_7x7": "Conv_1a", "Conv2d_2b_1x1": "Conv_2b", "Conv2d_2c_3x3": "Conv_2c"}


def slim_units() -> dict[str, tuple[str, ...]]:
    """Slim layer scope (under InceptionV1/) -> our unit path under 'backbone'."""
    units = {slim: (ours,) for slim, ours in _STEM.items()}
    for block in LAYER_NAMES:
        if block not in INCEPTION_CHANNELS:
            continue
        branch_2 = "Conv2d_0a_3x3" if block == "Mixed_5b" else "Conv2d_0b_3x3"
        for slim, ours in (
            ("Branch_0/Conv2d_0a_1x1", "Branch_0_Conv_0a_1x1"),
            ("Branch_1/Conv2d_0a_1x1", "Branch_1_Conv_0a_1x1"),
            ("Branch_1/Conv2d_0b_3x3", "Branch_1_Conv_0b_3x3"),
            ("Branch_2/Conv2d_0a_1x1", "Branch_2_Conv_0a_1x1"),
            (f"Branch_2/{branch_2}", "Branch_2_Conv_0b_3x3"),
            ("Branch_3/Conv2d_0b_1x1", "Branch_3_Conv_0b_1x1"),
        ):
            units[f"{block}/{slim}"] = (block, ours)
    return units


def _checkpoint_prefix(path: str, workdir: str) -> str:
    """The prefix tf.train.load_checkpoint wants, extracting a .tar.gz into `workdir`."""
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise UserFileError(
            f"No checkpoint at {path}; download {DOWNLOAD_URL} and pass the "
            ".tar.gz or the extracted inception_v1.ckpt."
        )
    if os.path.isfile(path) and tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = [m for m in archive.getmembers() if m.isfile() and ".ckpt" in m.name]
            if not members:
                raise UserError(
                    f"{path} is an archive without a .ckpt inside; pass "
                    "inception_v1_2016_08_28.tar.gz or the checkpoint itself."
                )
            for member in members:  # flat names only: never write outside workdir
                member.name = os.path.basename(member.name)
                archive.extract(member, workdir, filter="data")
        names = sorted(os.path.basename(m.name) for m in members)
        index = [n for n in names if n.endswith(".index")]
        return os.path.join(workdir, index[0][: -len(".index")] if index else names[0])
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    data = re.match(r"(.*)\.data-\d+-of-\d+$", path)
    return data.group(1) if data else path


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{variable name: array} of a TF checkpoint (V1 or V2, or a .tar.gz holding one)."""
    import tensorflow as tf  # a dependency, but heavy: only when a checkpoint is read

    with tempfile.TemporaryDirectory() as workdir:
        prefix = _checkpoint_prefix(os.fspath(path), workdir)
        try:
            reader = tf.train.load_checkpoint(prefix)
        except (tf.errors.OpError, ValueError) as e:
            raise UserError(
                f"TensorFlow cannot read {os.fspath(path)} as a checkpoint ({e}); "
                f"pass the inception_v1.ckpt from {DOWNLOAD_URL}."
            ) from e
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def to_i2d(
    tensors: Mapping[str, np.ndarray],
) -> tuple[dict[tuple[str, ...], np.ndarray], list[str]]:
    """Flat i2d variables {('params' | 'batch_stats', 'backbone' | 'head', ...): array}
    from Slim tensors, and the bookkeeping names skipped.

    Every network variable is used exactly once: a Slim name this mapping does not know,
    or one it needs and does not find, fails in one sentence.
    """
    remaining = dict(tensors)
    missing, flat = [], {}

    def take(name: str):
        if name not in remaining:
            missing.append(name)
            return None
        return remaining.pop(name)

    for slim, unit in slim_units().items():
        scope = f"{SCOPE}/{slim}"
        if f"{scope}/BatchNorm/gamma" in remaining:
            raise UserError(
                f"{scope} has a BatchNorm gamma: this checkpoint was trained with "
                "batch_norm_scale=True, which TF-Slim's released Inception-v1 (and "
                "this model's 'tf_slim' BN) does not use."
            )
        weights = take(f"{scope}/weights")
        if weights is not None:
            flat[("params", "backbone", *unit, "conv", "kernel")] = weights[None]
        for slim_name, collection, name in (
            ("beta", "params", "bias"),
            ("moving_mean", "batch_stats", "mean"),
            ("moving_variance", "batch_stats", "var"),
        ):
            value = take(f"{scope}/BatchNorm/{slim_name}")
            if value is not None:
                flat[(collection, "backbone", *unit, "bn", name)] = value
    weights = take(f"{SCOPE}/Logits/Conv2d_0c_1x1/weights")
    biases = take(f"{SCOPE}/Logits/Conv2d_0c_1x1/biases")
    if weights is not None:
        flat[("params", "head", "Logits", "kernel")] = weights[None]
    if biases is not None:
        flat[("params", "head", "Logits", "bias")] = biases
    skipped = sorted(
        n for n in remaining if _BOOKKEEPING.search(n) or not n.startswith(SCOPE + "/")
    )
    unknown = sorted(set(remaining) - set(skipped))
    variables_lib.check_all_used(
        missing,
        unknown,
        noun="variables",
        architecture="Inception-v1",
        what_it_is="TF-Slim's Inception-v1 checkpoint",
        what_to_pass=f"pass the inception_v1.ckpt from {DOWNLOAD_URL}",
    )
    return {p: np.asarray(v, np.float32) for p, v in flat.items()}, skipped


def check_target(model_name: str) -> None:
    """Fails in one sentence unless `model_name` can start from Slim's Inception-v1."""
    from video_s3d import models

    spec = models.get_spec(model_name)
    if spec.convention != "tf_slim" or spec.padding != "same" or spec.width_multiplier != 1.0:
        raise UserError(
            f"Model {model_name!r} cannot start from TF-Slim's Inception-v1: that needs a full-width "
            "model with TF-Slim BN and padding (i2d, i3d, s3d, s3dg or a top/bottom-heavy sweep "
            "model); s3d_torchvision imports torchvision's S3D weights instead."
        )


def i2d_variables(
    flat: Mapping[tuple[str, ...], np.ndarray],
    num_classes: int = NUM_CLASSES,
    source_name: str = "TF-Slim Inception-v1",
) -> dict:
    """The i2d model's variables filled from a flat 2D import (`to_i2d`'s output), checked
    leaf by leaf against the model."""
    from video_s3d import models

    model = models.create("i2d", num_classes)
    target = variables_lib.abstract_variables(model, *models.minimum_input(models.get_spec("i2d")))
    return variables_lib.fill(flat, target, source_name)


def _draw_fresh(abstract: Mapping, seed: int) -> dict:
    """Values, with the model's own initialisers, for the leaves an ImageNet network cannot
    give: self-gates and the classifier (used only when its size differs from 1001). Every
    other leaf stays a shape for inflate_variables to fill; no full model.init (a 30-60 s
    compile of the whole network on CPU) is needed."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(abstract))
    kernels = [
        p for p in sorted(flat) if ("gating" in p or p[-2] == "Logits") and p[-1] == "kernel"
    ]
    # The initialiser draws i.i.d. elements: one draw for all kernels, cut into pieces
    # (one call per shape cost ~20 s of compiles on CPU for S3D-G's 38 gates).
    sizes = [int(np.prod(flat[p].shape)) for p in kernels]
    values = np.asarray(default_kernel_init(jax.random.key(seed), (sum(sizes),), jnp.float32))
    for path, piece in zip(kernels, np.split(values, np.cumsum(sizes)[:-1])):
        flat[path] = piece.reshape(flat[path].shape).astype(flat[path].dtype)
    for path in [p for p in flat if p[-2] == "Logits" and p[-1] == "bias"]:
        flat[path] = np.zeros(flat[path].shape, flat[path].dtype)
    return flax.traverse_util.unflatten_dict(flat)


def inflated_variables(
    i2d: Mapping, model_name: str, num_classes: int, seed: int = 0, in_channels: int = 3
) -> tuple[dict, list[str]]:
    """`model_name`'s variables inflated from the i2d ones (inflate.inflate_variables), and
    the leaves that start fresh (self-gates; the classifier unless num_classes is 1001),
    drawn with the model's initialisers from `seed`. `in_channels=2`: a flow network, whose
    stem kernel is the RGB one averaged over its input channels, once per flow channel."""
    from video_s3d import models
    from video_s3d.models import inflate

    check_target(model_name)
    model = models.create(model_name, num_classes)
    abstract = variables_lib.abstract_variables(
        model, *models.minimum_input(models.get_spec(model_name)), channels=in_channels
    )
    target = _draw_fresh(abstract, seed)
    result = flax.traverse_util.flatten_dict(inflate.inflate_variables(i2d, target))
    flat_target = flax.traverse_util.flatten_dict(target)
    unfilled = sorted("/".join(p) for p, v in result.items() if isinstance(v, jax.ShapeDtypeStruct))
    if unfilled:  # inflate kept a target leaf we had no value for: a mapping gap, not user error
        raise RuntimeError(
            f"Inflation left {len(unfilled)} leaves without a value: {', '.join(unfilled[:3])}."
        )
    fresh = sorted("/".join(p) for p, v in result.items() if v is flat_target[p])
    return flax.traverse_util.unflatten_dict({p: np.asarray(v) for p, v in result.items()}), fresh
