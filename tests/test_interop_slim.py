"""TF-Slim Inception-v1 import: checkpoint reading, name mapping, i2d vs a TF computation,
inflation of the imported weights.

The fake checkpoint is written with the Slim variable names by `slim_inception_v1` below,
an Inception-v1 forward pass in plain TensorFlow ops written from TF-Slim's
nets/inception_v1.py (not from this project's mapping): it names every variable as Slim
does and draws its value when first asked, so the same function both defines the
checkpoint and computes the reference logits.
"""

import json
import os
import tarfile

import flax
import jax
import numpy as np
import pytest
import tensorflow as tf
from models_testing import jit

from video_s3d import checkpointing, errors, import_weights, models, parallel
from video_s3d.interop import slim_inception
from video_s3d.interop import variables as variables_lib

# Slim's Inception blocks: (name, branch_0, branch_1 reduce, branch_1, branch_2 reduce,
# branch_2, branch_3); a max-pool (window, stride 2) comes before the named blocks.
SLIM_BLOCKS = (
    ("Mixed_3b", 64, 96, 128, 16, 32, 32),
    ("Mixed_3c", 128, 128, 192, 32, 96, 64),
    ("Mixed_4b", 192, 96, 208, 16, 48, 64),
    ("Mixed_4c", 160, 112, 224, 24, 64, 64),
    ("Mixed_4d", 128, 128, 256, 24, 64, 64),
    ("Mixed_4e", 112, 144, 288, 32, 64, 64),
    ("Mixed_4f", 256, 160, 320, 32, 128, 128),
    ("Mixed_5b", 256, 160, 320, 32, 128, 128),
    ("Mixed_5c", 384, 192, 384, 48, 128, 128),
)
POOL_BEFORE = {"Mixed_4b": 3, "Mixed_5b": 2}
SIZE = 197  # odd: SAME padding is asymmetric at every stride-2 layer; 7x7 before the head


class SlimVariables:
    """Draws each variable when first named (He-scaled kernels, spread BN statistics, so
    activations stay O(1) through 22 layers) and remembers it."""

    def __init__(self, seed: int):
        self.rng, self.values = np.random.default_rng(seed), {}

    def __call__(self, name: str, shape) -> tf.Tensor:
        if name not in self.values:
            leaf = name.rsplit("/", 1)[-1]
            if leaf == "weights":
                value = self.rng.normal(size=shape) * (2.0 / np.prod(shape[:-1])) ** 0.5
            elif leaf == "moving_variance":
                value = self.rng.uniform(0.5, 1.5, size=shape)
            else:  # beta, moving_mean, biases
                value = 0.1 * self.rng.normal(size=shape)
            self.values[name] = value.astype(np.float32)
        return tf.constant(self.values[name])


def slim_inception_v1(images, var):
    """Logits [B, 1001] and endpoints of TF-Slim's Inception-v1 in eval mode (NHWC)."""

    def conv(net, scope, depth, k, stride=1):
        scope = f"InceptionV1/{scope}"
        net = tf.nn.conv2d(
            net, var(f"{scope}/weights", [k, k, net.shape[-1], depth]), stride, "SAME"
        )
        net = tf.nn.batch_normalization(
            net,
            var(f"{scope}/BatchNorm/moving_mean", [depth]),
            var(f"{scope}/BatchNorm/moving_variance", [depth]),
            offset=var(f"{scope}/BatchNorm/beta", [depth]),
            scale=None,
            variance_epsilon=0.001,
        )
        return tf.nn.relu(net)

    def pool(net, k, stride):
        return tf.nn.max_pool2d(net, k, stride, "SAME")

    end = {}
    net = end["Conv_1a"] = conv(images, "Conv2d_1a_7x7", 64, 7, 2)
    net = conv(pool(net, 3, 2), "Conv2d_2b_1x1", 64, 1)
    net = end["Conv_2c"] = conv(net, "Conv2d_2c_3x3", 192, 3)
    net = pool(net, 3, 2)
    for name, b0, b1r, b1, b2r, b2, b3 in SLIM_BLOCKS:
        if name in POOL_BEFORE:
            net = pool(net, POOL_BEFORE[name], 2)
        third = "Conv2d_0a_3x3" if name == "Mixed_5b" else "Conv2d_0b_3x3"  # Slim's quirk
        net = end[name] = tf.concat(
            [
                conv(net, f"{name}/Branch_0/Conv2d_0a_1x1", b0, 1),
                conv(
                    conv(net, f"{name}/Branch_1/Conv2d_0a_1x1", b1r, 1),
                    f"{name}/Branch_1/Conv2d_0b_3x3",
                    b1,
                    3,
                ),
                conv(
                    conv(net, f"{name}/Branch_2/Conv2d_0a_1x1", b2r, 1),
                    f"{name}/Branch_2/{third}",
                    b2,
                    3,
                ),
                conv(pool(net, 3, 1), f"{name}/Branch_3/Conv2d_0b_1x1", b3, 1),
            ],
            axis=3,
        )
    net = tf.nn.avg_pool2d(net, 7, 1, "VALID")  # AvgPool_0a_7x7
    logits = tf.nn.conv2d(
        net, var("InceptionV1/Logits/Conv2d_0c_1x1/weights", [1, 1, 1024, 1001]), 1, "VALID"
    )
    logits = logits + var("InceptionV1/Logits/Conv2d_0c_1x1/biases", [1001])
    return tf.squeeze(logits, [1, 2]).numpy(), {k: v.numpy() for k, v in end.items()}


@pytest.fixture(scope="module")
def slim(tmp_path_factory):
    """The fake checkpoint in the three forms users have: the release's .tar.gz holding a
    V1 inception_v1.ckpt, that .ckpt, and a V2 prefix (as a Slim fine-tuning run writes)."""
    var = SlimVariables(seed=7)
    image = np.random.default_rng(8).uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    logits, endpoints = slim_inception_v1(tf.constant(image), var)
    tensors = {**var.values, "global_step": np.asarray(12345, np.int64)}
    folder = tmp_path_factory.mktemp("slim")
    v1 = str(folder / "inception_v1.ckpt")
    tf.raw_ops.Save(filename=v1, tensor_names=list(tensors), data=list(tensors.values()))
    release = str(folder / "inception_v1_2016_08_28.tar.gz")
    with tarfile.open(release, "w:gz") as archive:
        archive.add(v1, arcname="inception_v1.ckpt")
    v2 = str(folder / "v2" / "model.ckpt-100")
    tf.raw_ops.SaveV2(
        prefix=v2,
        tensor_names=list(tensors),
        shape_and_slices=[""] * len(tensors),
        tensors=list(tensors.values()),
    )
    return {
        "values": var.values,
        "tensors": tensors,
        "image": image,
        "logits": logits,
        "endpoints": endpoints,
        "v1": v1,
        "release": release,
        "v2": v2,
    }


@pytest.fixture(scope="module")
def i2d(slim):
    flat, skipped = slim_inception.to_i2d(slim_inception.read_checkpoint(slim["release"]))
    assert skipped == ["global_step"]
    return slim_inception.i2d_variables(flat)


def test_reads_release_tarball_v1_and_v2(slim):
    for path in (slim["release"], slim["v1"], slim["v2"], slim["v2"] + ".index"):
        read = slim_inception.read_checkpoint(path)
        assert sorted(read) == sorted(slim["tensors"]), path
        for name, value in slim["tensors"].items():
            np.testing.assert_array_equal(read[name], value, err_msg=f"{path}: {name}")


def test_every_variable_used_once_every_leaf_filled(slim, i2d):
    """Each Slim variable lands, unchanged, in exactly one leaf, and every i2d leaf is filled."""
    leaves = flax.traverse_util.flatten_dict(i2d)
    abstract = variables_lib.abstract_variables(models.create("i2d", 1001), 1, 32)
    assert len(leaves) == len(jax.tree_util.tree_leaves(abstract)) == len(slim["values"]) == 230
    # Values are random, so a leaf's bytes identify the variable it came from.
    by_bytes = {np.asarray(v).tobytes(): "/".join(p) for p, v in leaves.items()}
    assert len(by_bytes) == len(leaves)
    homes = {name: by_bytes.get(value.tobytes()) for name, value in slim["values"].items()}
    assert None not in homes.values()
    assert len(set(homes.values())) == len(homes)
    assert (
        homes["InceptionV1/Mixed_5b/Branch_2/Conv2d_0a_3x3/weights"]
        == "params/backbone/Mixed_5b/Branch_2_Conv_0b_3x3/conv/kernel"
    )
    assert (
        homes["InceptionV1/Mixed_4e/Branch_3/Conv2d_0b_1x1/BatchNorm/moving_variance"]
        == "batch_stats/backbone/Mixed_4e/Branch_3_Conv_0b_1x1/bn/var"
    )


def test_wrong_checkpoints_fail_with_the_names(slim):
    tensors = dict(slim["tensors"])
    lacking = {
        k: v
        for k, v in tensors.items()
        if k != "InceptionV1/Mixed_4c/Branch_1/Conv2d_0b_3x3/weights"
    }
    with pytest.raises(
        ValueError,
        match=r"lacks 1 variables it needs \(InceptionV1/Mixed_4c/Branch_1/Conv2d_0b_3x3/weights\)",
    ):
        slim_inception.to_i2d(lacking)
    extra = {**tensors, "InceptionV1/AuxLogits/Conv2d_1b_1x1/weights": np.zeros(1, np.float32)}
    with pytest.raises(
        ValueError, match=r"has 1 variables Inception-v1 does not \(InceptionV1/AuxLogits"
    ):
        slim_inception.to_i2d(extra)
    gamma = {**tensors, "InceptionV1/Conv2d_1a_7x7/BatchNorm/gamma": np.ones(64, np.float32)}
    with pytest.raises(errors.UserError, match="batch_norm_scale=True"):
        slim_inception.to_i2d(gamma)
    with pytest.raises(ValueError, match="s3d_torchvision imports torchvision's S3D weights"):
        slim_inception.check_target("s3d_torchvision")
    with pytest.raises(ValueError, match="full-width model"):
        slim_inception.check_target("tiny_s3dg")


def test_i2d_matches_slim_computed_by_tensorflow(slim, i2d):
    """Whole network: i2d on the image as a one-frame clip vs the TF ops on the image."""
    model = models.create("i2d", 1001)
    with jax.default_matmul_precision("highest"):  # GPUs default to TF32
        logits, endpoints = jit(lambda v, x: model.apply(v, x, train=False, return_endpoints=True))(
            i2d, slim["image"][:, None]
        )
    reference = slim["logits"]
    scale = np.abs(reference).max()
    assert scale > 1.0  # lively weights: the comparison is not between two ~0 vectors
    np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-4 * scale)
    for name in ("Conv_1a", "Conv_2c", "Mixed_4b", "Mixed_5c"):
        ours, theirs = np.asarray(endpoints[name])[:, 0], slim["endpoints"][name]
        np.testing.assert_allclose(
            ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max(), err_msg=name
        )


def test_inflated_s3d_sees_a_boring_video_as_the_image(i2d):
    """s3d from the imported i2d: on a clip repeating one frame, the endpoints of the frames
    whose temporal receptive field stays inside the clip equal i2d's on that frame (the
    full 3x7x7 stem reads zero padding at the clip's ends; separable convs start as the
    identity in time). 9 frames: Conv_1a..Conv_2c frames 1-3, Mixed_3b frame 2."""
    s3d, fresh = slim_inception.inflated_variables(i2d, "s3d", 1001)
    assert fresh == []  # every leaf came from the checkpoint (or is an identity temporal half)
    image = np.random.default_rng(3).uniform(-1, 1, (1, 1, 64, 64, 3)).astype(np.float32)
    with jax.default_matmul_precision("highest"):
        _, flat_2d = jit(
            lambda v, x: models.create("i2d", 1001).apply(v, x, return_endpoints=True)
        )(i2d, image)
        _, flat_3d = jit(
            lambda v, x: models.create("s3d", 1001).apply(v, x, return_endpoints=True)
        )(s3d, np.repeat(image, 9, axis=1))
    for name, frames in (("Conv_1a", (1, 2, 3)), ("Conv_2c", (1, 2, 3)), ("Mixed_3b", (2,))):
        expected = np.asarray(flat_2d[name])[:, 0]
        for t in frames:
            np.testing.assert_allclose(
                np.asarray(flat_3d[name])[:, t],
                expected,
                rtol=1e-4,
                atol=1e-4 * np.abs(expected).max(),
                err_msg=f"{name} frame {t}",
            )
        # ...and the end frames do see the padding (so the statement above is not vacuous).
        assert not np.allclose(np.asarray(flat_3d[name])[:, 0], expected, atol=1e-3)


def test_s3dg_gates_and_new_classifier_start_fresh(i2d):
    s3dg, fresh = slim_inception.inflated_variables(i2d, "s3dg", 5, seed=1)
    gates = [f for f in fresh if "gating" in f]
    assert len(gates) == 37 and sorted(fresh) == sorted(
        gates + ["params/head/Logits/bias", "params/head/Logits/kernel"]
    )
    kernel = s3dg["params"]["head"]["Logits"]["kernel"]
    assert kernel.shape == (1, 1, 1, 1024, 5) and 0.005 < kernel.std() < 0.02
    np.testing.assert_array_equal(  # a 1x1 conv: copied as is
        s3dg["params"]["backbone"]["Mixed_4d"]["Branch_0_Conv_0a_1x1"]["conv"]["kernel"],
        i2d["params"]["backbone"]["Mixed_4d"]["Branch_0_Conv_0a_1x1"]["conv"]["kernel"],
    )
    stem = s3dg["params"]["backbone"]["Conv_1a"]["conv"]["kernel"]  # 3x7x7: repeated, / 3
    np.testing.assert_allclose(
        stem.sum(axis=0), i2d["params"]["backbone"]["Conv_1a"]["conv"]["kernel"][0], rtol=1e-6
    )


def test_cli_writes_an_inflated_workdir(slim, tmp_path, capsys):
    out = str(tmp_path / "s3d_imagenet")
    assert (
        import_weights.main(
            [
                "--source=slim_inception_v1",
                f"--path={slim['release']}",
                "--model=s3d",
                f"--workdir={out}",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert (
        "skipped 1 bookkeeping variables: global_step" in err and "--config.model.name=s3d" in err
    )
    abstract = variables_lib.abstract_variables(models.create("s3d", 1001), 1, 32)
    restored, info = checkpointing.load_variables(out, abstract, parallel.make_mesh())
    assert info["model"] == "s3d" and info["num_classes"] == 1001 and info["fresh_leaves"] == []
    np.testing.assert_array_equal(
        np.asarray(restored["params"]["head"]["Logits"]["bias"]),
        slim["values"]["InceptionV1/Logits/Conv2d_0c_1x1/biases"],
    )
    assert (
        import_weights.main(
            [
                "--source=slim_inception_v1",
                f"--path={slim['release']}",
                "--model=s3d_torchvision",
                f"--workdir={tmp_path / 'x'}",
            ]
        )
        == 2
    )
    assert "cannot start from TF-Slim's Inception-v1" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x" / "checkpoints")


def test_imagenet_weights_inflate_into_a_flow_network(i2d, slim, tmp_path, capsys):
    """--modality=flow: the stem's RGB kernel averaged over its input channels, once per flow
    channel (x, y); every other leaf as the RGB import has it."""
    rgb, _ = slim_inception.inflated_variables(i2d, "s3dg", 1001, seed=1)
    flow, _ = slim_inception.inflated_variables(i2d, "s3dg", 1001, seed=1, in_channels=2)
    stem = ("params", "backbone", "Conv_1a", "conv", "kernel")
    flat_rgb, flat_flow = (flax.traverse_util.flatten_dict(v) for v in (rgb, flow))
    assert flat_rgb[stem].shape[-2] == 3 and flat_flow[stem].shape[-2] == 2
    averaged = flat_rgb[stem].mean(axis=-2, keepdims=True)
    np.testing.assert_allclose(  # float rounding: the mean and the inflation's / 3 commute
        flat_flow[stem], np.repeat(averaged, 2, axis=-2), rtol=1e-5, atol=1e-6 * abs(averaged).max()
    )
    assert sorted(flat_flow) == sorted(flat_rgb)
    for path in flat_rgb:
        if path != stem:
            np.testing.assert_array_equal(flat_flow[path], flat_rgb[path], err_msg=str(path))

    out = str(tmp_path / "s3dg_imagenet_flow")
    argv = ["--source=slim_inception_v1", f"--path={slim['release']}", "--model=s3dg"]
    assert import_weights.main(argv + [f"--workdir={out}", "--modality=flow"]) == 0
    abstract = variables_lib.abstract_variables(models.create("s3dg", 1001), 1, 32, channels=2)
    restored, info = checkpointing.load_variables(out, abstract, parallel.make_mesh())
    assert info["modality"] == "flow"
    np.testing.assert_array_equal(
        np.asarray(restored["params"]["backbone"]["Conv_1a"]["conv"]["kernel"]), flat_flow[stem]
    )
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    assert config["data"]["modality"] == "flow" and "input_mean" not in config["data"]
    # torchvision's S3D is RGB Kinetics weights: refused in one sentence, before reading.
    argv = ["--source=torchvision_s3d", f"--path={slim['release']}", "--modality=flow"]
    assert import_weights.main(argv + [f"--workdir={tmp_path / 'x'}"]) == 2
    assert "no flow weights are published" in capsys.readouterr().err
