"""Multiply-adds, parameters and training activation memory of a model, and their CLI.

    python -m video_s3d.cost --model=s3dg --frames=64 --size=224
    python -m video_s3d.cost --model=s3d_torchvision --frames=16 --size=224 --json
    python -m video_s3d.cost --all            # every named model at 64x224x224 vs the paper

Counting conventions (all per clip, forward pass):
  gmacs      Multiply-adds of every convolution and matmul in the program JAX hands to
             XLA, counting every kernel tap at every output position, taps that land
             in zero padding included. This is the convention of torchvision's
             "GFLOPS", fvcore and the video papers (they count multiply-adds). BatchNorm,
             ReLU, pooling and gating's sigmoid/product are not counted.
  xla_gmacs  XLA's own cost analysis of the same forward program, flops / 2. XLA counts
             2 flops per multiply-add but skips kernel taps that fall in padding (so
             convolutions count less), and it adds 1 flop per element for BN, ReLU,
             pooling etc. (so the total can land on either side of gmacs).
  activation memory  Bytes the backward pass needs from the forward pass of one
             training step (train-mode BN, dropout), i.e. the residuals autodiff saves,
             excluding the parameters and the input clip; before XLA's own fusion, so
             an upper bound on what XLA keeps. Scales linearly with --batch.
The cross-check `analytic_macs` recounts gmacs per layer from the spec alone.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from typing import Any, Callable, Sequence

from absl import app, flags

# Paper figures (Xie et al. 2018, Kinetics-400 at 64x224x224); see REFERENCE.md.
PAPER_GMACS = {"i3d": 108.0, "s3d": 66.38, "s3dg": 71.38}
PAPER_FRAMES, PAPER_SIZE = 64, 224


@dataclasses.dataclass(frozen=True)
class ModelCost:
    model: str
    frames: int
    size: int
    num_classes: int
    batch: int
    gmacs: float  # per clip
    xla_gmacs: float  # per clip
    params: int
    activation_bytes: int  # for the whole batch

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- counting the program


def _sub_jaxprs(params: dict) -> list:
    """Jaxprs nested in an equation's params (pjit, remat, custom_vjp, ...)."""
    found = []
    for value in params.values():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if hasattr(item, "eqns"):
                found.append(item)
            elif hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
                found.append(item.jaxpr)
    return found


def _jaxpr_macs(jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            out = eqn.outvars[0].aval.shape
            rhs = eqn.invars[1].aval.shape
            out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
            # Each output element takes (kernel taps x input channels per group) products.
            total += math.prod(out) * (math.prod(rhs) // rhs[out_feature_dim])
        elif name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)
        elif name in ("scan", "while"):
            raise NotImplementedError(f"MAC counting through {name} is not supported.")
        else:
            for sub in _sub_jaxprs(eqn.params):
                total += _jaxpr_macs(sub)
    return total


def program_macs(fn: Callable, *args) -> int:
    """Dense multiply-adds of the convolutions and matmuls in `fn`'s traced program."""
    import jax

    return _jaxpr_macs(jax.make_jaxpr(fn)(*args).jaxpr)


def xla_flops(fn: Callable, *args) -> float:
    """XLA's cost-analysis flop count of `fn` (lowered, not compiled)."""
    import jax

    analysis = jax.jit(fn).lower(*args).cost_analysis()
    if isinstance(analysis, (list, tuple)):  # Older JAX returned one dict per device.
        analysis = analysis[0]
    return float(analysis["flops"])


def saved_residual_bytes(fn: Callable, *args) -> int:
    """Bytes of the residuals `jax.vjp(fn, *args)` keeps for the backward pass,
    not counting `args` themselves (abstract evaluation: nothing is computed)."""
    import jax

    def residuals(*primals):
        _, pullback = jax.vjp(fn, *primals)
        given = {id(leaf) for leaf in jax.tree.leaves(primals)}
        return [leaf for leaf in jax.tree.leaves(pullback) if id(leaf) not in given]

    shapes = jax.eval_shape(residuals, *args)
    if not shapes:
        raise RuntimeError("jax.vjp exposed no residuals; the activation count needs updating.")
    return sum(math.prod(s.shape) * s.dtype.itemsize for s in shapes)


def measure(
    name: str,
    frames: int,
    size: int,
    num_classes: int = 400,
    batch: int = 1,
    dtype: str = "float32",
) -> ModelCost:
    """Cost of model `name` on [batch, frames, size, size, 3] clips (nothing is computed)."""
    import jax
    import jax.numpy as jnp

    from video_s3d import models
    from video_s3d.models.layers import window_ops

    model = models.create(name, num_classes, dtype=dtype)
    spec = models.get_spec(name)
    min_t, min_s = models.inception.minimum_input(spec)
    if frames < min_t or size < min_s:
        raise ValueError(f"{name} needs at least {min_t} frames of {min_s}x{min_s}; got {frames}x{size}.")
    x = jax.ShapeDtypeStruct((batch, frames, size, size, 3), jnp.float32)
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    variables = jax.eval_shape(lambda x: model.init(rngs, x, train=False), x)
    params = sum(math.prod(p.shape) for p in jax.tree.leaves(variables["params"]))

    def forward(variables, x):
        return model.apply(variables, x, train=False)

    def train_loss(params, batch_stats, x):
        logits, _ = model.apply(
            {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"],
            rngs={"dropout": jax.random.key(2)},
        )
        return jnp.sum(logits)

    # One XLA op per convolution, so both counts describe the same standard program
    # whatever backend runs this (on CPU the model otherwise unrolls 3D convs).
    with window_ops("native"):
        macs = program_macs(forward, variables, x)
        flops = xla_flops(forward, variables, x)
        residuals = saved_residual_bytes(
            train_loss, variables["params"], variables["batch_stats"], x
        )
    return ModelCost(
        model=name,
        frames=frames,
        size=size,
        num_classes=num_classes,
        batch=batch,
        gmacs=macs / batch / 1e9,
        xla_gmacs=flops / 2 / batch / 1e9,
        params=params,
        activation_bytes=residuals,
    )


# ---------------------------------------------------------------- independent analytic count


def _out_size(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size + 2 * ((window - 1) // 2) - window) // stride + 1


def analytic_macs(spec, frames: int, size: int, num_classes: int) -> dict[str, int]:
    """Dense multiply-adds per layer (Conv_1a, Conv_2b, Conv_2c, Mixed_*, Logits) for one
    clip, from REFERENCE.md's layer table and `spec` only (no model code involved)."""
    from video_s3d.models.spec import INCEPTION_CHANNELS, LAYER_NAMES

    t, h = frames, size  # square frames: h == w
    pad = spec.padding
    ch = spec.channels

    def conv(cin: int, cout: int, taps: int, t_out: int, h_out: int) -> int:
        return t_out * h_out * h_out * taps * cin * cout

    def layer_conv(layer, cin: int, cout: int, k: int, t_in: int, h_in: int, stride: int):
        """MACs and output (t, h) of a ConvUnit of the given kind."""
        kt = layer.temporal_kernel
        t_out, h_out = _out_size(t_in, kt, stride, pad), _out_size(h_in, k, stride, pad)
        if layer.kind == "2d":
            t_out = _out_size(t_in, 1, stride, pad)
            return conv(cin, cout, k * k, t_out, h_out), t_out, h_out
        if layer.kind == "3d":
            return conv(cin, cout, kt * k * k, t_out, h_out), t_out, h_out
        spatial = conv(cin, cout, k * k, t_in, h_out)  # spatial half keeps every frame
        return spatial + conv(cout, cout, kt, t_out, h_out), t_out, h_out

    def gate(layer, c: int) -> int:
        return c * c if layer.gating else 0

    macs = {}
    c64 = ch(64)
    macs["Conv_1a"], t, h = layer_conv(spec.stem, 3, c64, 7, t, h, 2)
    t, h = t, _out_size(h, 3, 2, pad)  # MaxPool_2a
    macs["Conv_2b"] = conv(c64, c64, 1, t, h)
    c = c64
    pools = {"Mixed_3b": (1, 3, 2), "Mixed_4b": (3, 3, 2), "Mixed_5b": (2, 2, 2)}
    for name, layer in zip(LAYER_NAMES, spec.layers):
        if name == "Conv_2c":
            c_out = ch(192)
            m, t, h = layer_conv(layer, c, c_out, 3, t, h, 1)
            macs[name] = m + gate(layer, c_out)
            h = _out_size(h, 3, 2, pad)  # MaxPool_3a
            c = c_out
            continue
        if name in pools and name != "Mixed_3b":
            kt, k, s = pools[name]
            t, h = _out_size(t, kt, s, pad), _out_size(h, k, s, pad)
        b0, b1r, b1, b2r, b2, b3 = (ch(x) for x in INCEPTION_CHANNELS[name])
        m = conv(c, b0 + b1r + b2r + b3, 1, t, h)  # the four 1x1x1 convs
        m += layer_conv(layer, b1r, b1, 3, t, h, 1)[0] + layer_conv(layer, b2r, b2, 3, t, h, 1)[0]
        m += sum(gate(layer, x) for x in (b0, b1, b2, b3))
        macs[name] = m
        c = b0 + b1 + b2 + b3
    t_out = t - min(2, t) + 1  # head avg-pool [2, 7, 7] VALID, window clipped
    h_out = h - min(7, h) + 1
    macs["Logits"] = conv(c, num_classes, 1, t_out, h_out)
    return macs


def valid_taps(size: int, window: int, stride: int, padding: str) -> int:
    """Number of (output position, kernel tap) pairs along one dimension whose input lies
    inside the image: what XLA's cost analysis counts for a convolution."""
    from video_s3d.models.layers import padding_pairs

    (low, _), = padding_pairs([size], [window], [stride], padding)
    count = _out_size(size, window, stride, padding)
    return sum(
        1 for o in range(count) for j in range(window) if 0 <= o * stride - low + j < size
    )


# ---------------------------------------------------------------- tables


def _memory(num_bytes: int) -> str:
    return f"{num_bytes / 2**30:.2f} GiB" if num_bytes >= 2**30 else f"{num_bytes / 2**20:.1f} MiB"


def stem_label(name: str) -> str:
    from video_s3d.models import get_spec

    stem = get_spec(name).stem
    return {"2d": "2D 1x7x7", "3d": f"3D {stem.temporal_kernel}x7x7", "separable":
            f"sep 1x7x7+{stem.temporal_kernel}x1x1"}[stem.kind]


def format_table(costs: Sequence[ModelCost]) -> str:
    header = (
        f"{'model':<22} {'stem':<18} {'GMACs':>8} {'XLA GMACs':>9} {'paper':>7} "
        f"{'diff':>6} {'params':>11} {'train act. mem':>15}"
    )
    lines = [header, "-" * len(header)]
    for c in costs:
        paper = PAPER_GMACS.get(c.model) if (c.frames, c.size) == (PAPER_FRAMES, PAPER_SIZE) else None
        paper_s = f"{paper:7.1f}" if paper else f"{'':>7}"
        diff_s = f"{(c.gmacs - paper) / paper:+6.1%}" if paper else f"{'':>6}"
        lines.append(
            f"{c.model:<22} {stem_label(c.model):<18} {c.gmacs:8.2f} {c.xla_gmacs:9.2f} "
            f"{paper_s} {diff_s} {c.params:>11,} {_memory(c.activation_bytes):>15}"
        )
    return "\n".join(lines)


CONVENTION_NOTE = """\
GMACs: dense multiply-adds of convs+matmuls per clip, padding taps included (torchvision /
fvcore / paper convention); XLA GMACs: XLA cost analysis flops/2 (skips padding taps, adds
BN/ReLU/pool flops); paper: Xie et al. 2018 at 64x224x224. Activation memory: residuals
one training step saves for the backward pass (batch {batch}, {dtype}).
Stems: i3d 7x7x7 full; s3d/s3dg (TF-Slim) 3x7x7 full; s3d_torchvision separable 1x7x7+7x1x1.
The paper's S3D/S3D-G figures (66.4 / 71.4 G) are 5 and 10 G above our TF-Slim count
(~60.9 G for both) because the paper's stem is not TF-Slim's 3x7x7 full conv: with the
separable stem (1x7x7 at every frame, then 7x1x1; s3d_torchvision) the same network
counts 71.9 G, matching the paper's S3D-G; gating itself adds only ~0.01 G. The I3D row
(7x7x7 stem, {i3d_diff} vs 108 G) agrees within the unstated convention of the paper."""


FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Model name (see video_s3d.models.names()).")
flags.DEFINE_integer("frames", PAPER_FRAMES, "Clip length T.")
flags.DEFINE_integer("size", PAPER_SIZE, "Frame height = width.")
flags.DEFINE_integer("num_classes", 400, "Number of classes.")
flags.DEFINE_integer("batch", 1, "Clips per training step (activation memory scales with it).")
flags.DEFINE_string("dtype", "float32", "Compute dtype: float32 | bfloat16 | float16.")
flags.DEFINE_bool("json", False, "Print one JSON object per model instead of a table.")
flags.DEFINE_bool("all", False, "Table of every named (non-tiny) model at 64x224x224.")
flags.DEFINE_list("models", None, "With --all: restrict the table to these models.")


def selected_models(all_models: bool, model: str | None, subset: Sequence[str] | None) -> list[str]:
    from video_s3d import models

    if all_models:
        chosen = list(subset) if subset else models.names(include_tiny=False)
    elif model:
        chosen = [model]
    else:
        raise ValueError("Pass --model=NAME (e.g. --model=s3dg) or --all.")
    for name in chosen:
        models.get_spec(name)  # Unknown name -> one clear ValueError before any work.
    return chosen


def main(argv: Sequence[str]) -> None:
    del argv
    try:
        chosen = selected_models(FLAGS.all, FLAGS.model, FLAGS.models)
    except ValueError as error:
        sys.exit(f"error: {error}")
    frames, size = (PAPER_FRAMES, PAPER_SIZE) if FLAGS.all else (FLAGS.frames, FLAGS.size)
    costs = []
    for i, name in enumerate(chosen):
        start = time.time()
        try:
            cost = measure(name, frames, size, FLAGS.num_classes, FLAGS.batch, FLAGS.dtype)
        except ValueError as error:
            sys.exit(f"error: {error}")
        costs.append(cost)
        if FLAGS.json:
            print(json.dumps(cost.as_json()), flush=True)
        if len(chosen) > 1:
            print(f"[{i + 1}/{len(chosen)}] {name}: {time.time() - start:.1f}s", file=sys.stderr, flush=True)
    if FLAGS.json:
        return
    print(f"Cost per clip at {frames}x{size}x{size}, {FLAGS.num_classes} classes")
    print(format_table(costs))
    i3d = next((c for c in costs if c.model == "i3d"), None)
    i3d_diff = f"{(i3d.gmacs - 108.0) / 108.0:+.1%}" if i3d and (frames, size) == (64, 224) else "n/a"
    print(CONVENTION_NOTE.format(batch=FLAGS.batch, dtype=FLAGS.dtype, i3d_diff=i3d_diff))


if __name__ == "__main__":
    app.run(main)
