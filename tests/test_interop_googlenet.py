"""torchvision GoogLeNet import (a second 2D Inception-v1 source): mapping, BN-scale folding,
i2d logits vs recorded torchvision (tests/fixtures/make_torchvision_golden.py), CLI."""

import json
import os

import interop_testing
import jax
import numpy as np
import pytest
from models_testing import jit

from video_s3d import checkpointing, import_weights, models, parallel
from video_s3d.interop import torchvision_googlenet
from video_s3d.interop import variables as variables_lib

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture(scope="module")
def golden():
    with open(os.path.join(FIXTURES, "torchvision_googlenet_golden.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def seeded(golden, tmp_path_factory):
    state = interop_testing.seeded_state_dict(
        golden["entries"], golden["seed"], signed_bn_scale=True
    )
    path = str(tmp_path_factory.mktemp("googlenet") / "googlenet_seeded.pth")
    interop_testing.write_pth(path, state)
    return path, state


def test_every_tensor_used_and_bn_scale_folded(seeded):
    _, state = seeded
    flat, skipped = torchvision_googlenet.convert(state)
    assert len(skipped) == 18 and all(s.startswith(("aux1.", "aux2.")) for s in skipped)
    # Per conv unit 5 tensors (conv weight + 4 BN) become 4 leaves (gamma is folded away).
    units = len(torchvision_googlenet.unit_prefixes())
    assert units == 57 and len(flat) == 4 * units + 2
    abstract = variables_lib.abstract_variables(models.create("i2d", 1000), 1, 32)
    assert len(jax.tree_util.tree_leaves(abstract)) == len(flat)
    gamma = state["inception4c.branch3.1.bn.weight"]
    assert (gamma < 0).any() and (gamma > 0).any()
    unit = ("backbone", "Mixed_4d", "Branch_2_Conv_0b_3x3")
    np.testing.assert_allclose(
        flat[("params", *unit, "conv", "kernel")][0],
        state["inception4c.branch3.1.conv.weight"].transpose(2, 3, 1, 0) * gamma,
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        flat[("batch_stats", *unit, "bn", "mean")],
        state["inception4c.branch3.1.bn.running_mean"] * gamma,
        rtol=1e-6,
    )


def test_wrong_state_dicts_fail_with_the_names(seeded):
    _, state = seeded
    lacking = {k: v for k, v in state.items() if k != "inception5a.branch4.1.bn.running_var"}
    with pytest.raises(
        ValueError, match=r"lacks 1 tensors it needs \(inception5a\.branch4\.1\.bn\.running_var\)"
    ):
        torchvision_googlenet.convert(lacking)
    with pytest.raises(
        ValueError, match=r"has 1 tensors GoogLeNet does not \(features\.0\.weight\)"
    ):
        torchvision_googlenet.convert({**state, "features.0.weight": np.zeros(1, np.float32)})


def test_i2d_logits_match_recorded_torchvision(golden, seeded):
    """At 223x223 our SAME padding samples torchvision's grid: equal to float rounding."""
    path, _ = seeded
    variables, num_classes, _ = torchvision_googlenet.load_i2d(path)
    image = interop_testing.seeded_input(golden["input_shape"], golden["seed"] + 1)
    model = models.create("i2d", num_classes)
    with jax.default_matmul_precision("highest"):
        logits = jit(lambda v, x: model.apply(v, x, train=False))(
            variables, image.transpose(0, 2, 3, 1)[:, None]
        )
    reference = np.asarray(golden["logits"])
    scale = np.abs(reference).max()
    assert scale > 1.0
    np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-4 * scale)


def test_cli_inflates_into_i3d(seeded, tmp_path, capsys):
    path, state = seeded
    out = str(tmp_path / "i3d_imagenet_tv")
    assert (
        import_weights.main(
            ["--source=torchvision_googlenet", f"--path={path}", "--model=i3d", f"--workdir={out}"]
        )
        == 0
    )
    assert "skipped 18 auxiliary-classifier tensors" in capsys.readouterr().err
    abstract = variables_lib.abstract_variables(models.create("i3d", 1000), 1, 32)
    restored, info = checkpointing.load_variables(out, abstract, parallel.make_mesh())
    assert info["model"] == "i3d" and info["num_classes"] == 1000 and info["fresh_leaves"] == []
    stem = np.asarray(restored["params"]["backbone"]["Conv_1a"]["conv"]["kernel"])  # 7x7x7: / 7
    expected = state["conv1.conv.weight"].transpose(2, 3, 1, 0) * state["conv1.bn.weight"]
    assert stem.shape == (7, 7, 7, 3, 64)
    np.testing.assert_allclose(stem.sum(axis=0), expected, rtol=1e-5, atol=1e-6)
