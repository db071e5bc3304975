"""Cost accounting: torchvision's published S3D figures, the program count against an
independent per-layer count, XLA's convolution convention, activation memory, the CLI."""

import json
import math

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from video_s3d import cost, models


def test_s3d_torchvision_matches_published_params_and_macs():
    """torchvision S3D, KINETICS400_V1: 8,320,048 parameters, 17.979 G multiply-adds at
    1x16x224x224 (REFERENCE.md)."""
    c = cost.measure("s3d_torchvision", frames=16, size=224, num_classes=400)
    assert c.params == 8_320_048
    assert c.gmacs == pytest.approx(17.979, rel=0.005)
    analytic = cost.analytic_macs(models.get_spec("s3d_torchvision"), 16, 224, 400)
    assert c.gmacs * 1e9 == sum(analytic.values())
    assert cost.gmacs("s3d_torchvision", 16, 224, 400) == c.gmacs
    # XLA skips kernel taps in padding and adds elementwise flops; here the first wins.
    assert 0.9 * c.gmacs < c.xla_gmacs < c.gmacs
    assert c.activation_bytes > 100 * 2**20


@pytest.mark.parametrize(
    "name, frames, size",
    [
        ("i2d", 16, 64),
        ("i3d", 9, 48),
        ("s3dg", 16, 64),
        ("bottom_heavy_i3d_7", 16, 40),
        ("top_heavy_s3d_4", 16, 64),
        ("tiny_s3dg", 8, 32),
        ("tiny_s3d_torchvision", 12, 33),
    ],
)
def test_program_count_equals_independent_per_layer_count(name, frames, size):
    model = models.create(name, 11)
    x = jax.ShapeDtypeStruct((2, frames, size, size, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
    counted = cost.program_macs(lambda v, x: model.apply(v, x), variables, x)
    per_layer = cost.analytic_macs(models.get_spec(name), frames, size, 11)
    assert counted == 2 * sum(per_layer.values())
    assert set(per_layer) == {"Conv_1a", "Conv_2b", *models.LAYER_NAMES, "Logits"}


@pytest.mark.parametrize("padding", ["same", "symmetric"])
def test_xla_counts_two_flops_per_multiply_add_inside_the_input(padding):
    """What `xla_gmacs` means: per conv, XLA counts only kernel taps over real input."""
    x = jnp.zeros((1, 6, 11, 11, 4))
    kernel = jnp.zeros((3, 5, 5, 4, 8))
    strides = (2, 2, 2)
    pads = models.layers.padding_pairs(x.shape[1:4], kernel.shape[:3], strides, padding)

    def conv(x, k):
        return lax.conv_general_dilated(
            x, k, strides, pads, dimension_numbers=("NDHWC", "DHWIO", "NDHWC")
        )

    taps = [cost.valid_taps(n, k, 2, padding) for n, k in zip(x.shape[1:4], kernel.shape[:3])]
    assert cost.xla_flops(conv, x, kernel) / 2 == math.prod(taps) * 4 * 8
    dense = cost.program_macs(conv, x, kernel)
    assert dense == math.prod(conv(x, kernel).shape) * 3 * 5 * 5 * 4 > math.prod(taps) * 4 * 8


def test_activation_memory_counts_what_the_backward_pass_keeps():
    model = models.create("tiny_s3dg", 5)
    x = jax.ShapeDtypeStruct((1, 8, 32, 32, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
    _, endpoints = jax.eval_shape(
        lambda v, x: model.apply(v, x, return_endpoints=True), variables, x
    )
    # Every endpoint feeds a backward op, and each conv unit keeps more (BN, ReLU inputs).
    endpoint_bytes = sum(math.prod(e.shape) * 4 for e in endpoints.values())
    full = cost.measure("tiny_s3dg", 8, 32, num_classes=5, batch=3)
    assert 3 * endpoint_bytes < full.activation_bytes < 3 * 20 * endpoint_bytes
    per_clip = sum(cost.analytic_macs(models.get_spec("tiny_s3dg"), 8, 32, 5).values())
    assert full.gmacs * 1e9 == pytest.approx(per_clip)  # gmacs are per clip, whatever the batch


def test_cli_json_and_bad_input(capsys):
    assert (
        cost.main(
            ["--model=tiny_i2d", "--num_frames=8", "--crop_size=32", "--num_classes=7", "--json"]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out.strip())
    assert {"model", "gmacs", "params"} <= set(record)
    assert record["model"] == "tiny_i2d" and record["params"] > 0 and record["gmacs"] > 0
    assert cost.main(["--model=i5d"]) == 2
    assert "Unknown model 'i5d'" in capsys.readouterr().err
    assert cost.main(["--model=s3d_torchvision", "--num_frames=2", "--crop_size=224"]) == 2
    assert "at least 5 frames" in capsys.readouterr().err
    assert cost.main([]) == 2
    assert "--model=NAME" in capsys.readouterr().err
    assert cost.selected_models(True, None, None) == models.names(include_tiny=False)


def test_cli_keeps_the_traceback_of_a_bug(monkeypatch):
    """Only a UserError becomes one line; a ValueError from our code or a library is a bug."""

    def broken_measure(*args, **kwargs):
        raise ValueError("an internal error")

    monkeypatch.setattr(cost, "measure", broken_measure)
    with pytest.raises(ValueError, match="an internal error"):
        cost.main(["--model=tiny_i2d", "--frames=8", "--size=32"])


@pytest.mark.slow
def test_all_table_puts_paper_models_beside_paper_figures(capsys):
    assert cost.main(["--all", "--models=i3d,s3d,s3dg"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line
        for line in out.splitlines()
        if line.split()[:1] in (["i3d"], ["s3d"], ["s3dg"])
    }
    assert set(rows) == {"i3d", "s3d", "s3dg"}
    for name, paper in cost.PAPER_GMACS.items():
        fields = rows[name].split()
        assert f"{paper:.1f}" in fields, rows[name]
        ours = float(fields[fields.index("7x7x7" if name == "i3d" else "3x7x7") + 1])
        assert ours == pytest.approx(
            {"i3d": 111.153, "s3d": 64.184, "s3dg": 64.185}[name], abs=1e-3
        )
    assert "dense multiply-adds" in out
    assert "we do not claim an" in out and "0.0012 G" in out


def test_layer_table_shows_where_s3d_and_s3dg_differ(capsys):
    """The FLOP account: S3D-G's layers equal S3D's but for the gates (C^2 per gate, once per
    clip); the paper's column (107.89 / 66.38 / 71.38 G) is printed beside ours."""
    assert cost.main(["--layers"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    assert rows["layer"] == ["i3d", "s3d", "s3dg"]
    assert rows["paper"] == ["107.89", "66.38", "71.38"]
    assert rows["Conv_1a"][1] == rows["Conv_1a"][2]  # same stem: the stem is not the gap
    s3d = cost.analytic_macs(models.get_spec("s3d"), 64, 224, 400)
    s3dg = cost.analytic_macs(models.get_spec("s3dg"), 64, 224, 400)
    gap = sum(s3dg.values()) - sum(s3d.values())
    assert 0 < gap < 0.002e9  # 37 gates, C^2 each
    # Hypothesis (b), a count only: every gate's C x C at every position of its input.
    conv_2c = 32 * 56 * 56 * 192**2  # the first gate alone, at 64x224x224
    assert cost.gates_at_every_position_gmacs("s3dg", 64, 224) * 1e9 > conv_2c
    assert cost.gates_at_every_position_gmacs("s3d", 64, 224) == 0


def test_inference_activation_estimate_grows_with_frames():
    small = cost.inference_activation_bytes("tiny_s3dg", 8, 32)
    large = cost.inference_activation_bytes("tiny_s3dg", 16, 32)
    assert large == 2 * small  # every endpoint is linear in T (stride-2 layers at even T)
    # At least the input clip and the first layer's output, float32.
    assert small >= (8 * 32 * 32 * 3 + 4 * 16 * 16 * 8) * 4
