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
  activation memory  Bytes of activations the backward pass needs from the forward
             pass of one training step (train-mode BN, dropout): the residuals autodiff
             saves, less the parameters, the input clip and batch-independent weight
             copies; counted before XLA's fusion, so an upper bound on what XLA keeps.
             Linear in --batch.
The cross-check `analytic_macs` recounts gmacs per layer from the spec alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from typing import Any, Callable, Sequence


# Paper figures (Xie et al. 2018, Kinetics-400 at 64x224x224); see REFERENCE.md.
PAPER_GMACS = {"i3d": 108.0, "s3d": 66.38, "s3dg": 71.4}
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
    in_channels: int = 3,
) -> ModelCost:
    """Cost of model `name` on [batch, frames, size, size, in_channels] clips (nothing is
    computed); in_channels=2 is the flow stream (x, y)."""
    import jax
    import jax.numpy as jnp

    from video_s3d import models
    from video_s3d.models.layers import window_ops

    model = models.create(name, num_classes, dtype=dtype)
    spec = models.get_spec(name)
    min_t, min_s = models.minimum_input(spec)
    if frames < min_t or size < min_s:
        raise ValueError(f"{name} needs at least {min_t} frames of {min_s}x{min_s}; got {frames}x{size}.")
    x = jax.ShapeDtypeStruct((batch, frames, size, size, in_channels), jnp.float32)
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
        # Residuals = per-clip activations + batch-independent copies of weights (slices,
        # casts); two batch sizes separate them, and only the first is activation memory.
        one, two = (
            saved_residual_bytes(
                train_loss, variables["params"], variables["batch_stats"],
                jax.ShapeDtypeStruct((b, frames, size, size, in_channels), jnp.float32),
            )
            for b in (1, 2)
        )
        residuals = (two - one) * batch
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


def analytic_macs(spec, frames: int, size: int, num_classes: int,
                  in_channels: int = 3) -> dict[str, int]:
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
    macs["Conv_1a"], t, h = layer_conv(spec.stem, in_channels, c64, 7, t, h, 2)
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


def gmacs(name: str, frames: int, size: int, num_classes: int = 400,
          in_channels: int = 3) -> float:
    """Dense multiply-adds per clip in G, from the spec alone: instant, and equal to
    `measure(...).gmacs` (the tests hold them equal)."""
    from video_s3d.models import get_spec

    return sum(analytic_macs(get_spec(name), frames, size, num_classes, in_channels).values()
               ) / 1e9


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
            f"{c.model:<22} {stem_label(c.model):<18} {c.gmacs:8.3f} {c.xla_gmacs:9.3f} "
            f"{paper_s} {diff_s} {c.params:>11,} {_memory(c.activation_bytes):>15}"
        )
    return "\n".join(lines)


CONVENTIONS = """\
GMACs: dense multiply-adds of convolutions and matmuls per clip, kernel taps in padding
included (torchvision / fvcore / paper convention). XLA GMACs: XLA cost analysis flops / 2
(skips taps in padding, adds BN / ReLU / pooling flops). Activation memory: residuals one
training step keeps for the backward pass (batch {batch}, {dtype}), before XLA fusion.
Stems: i3d 3D 7x7x7; s3d, s3dg (TF-Slim) full 3D 3x7x7; s3d_torchvision separable 1x7x7
(every frame) then 7x1x1 stride 2; i2d 2D 1x7x7."""

# Why our counts differ from the paper's (for the README too).
PAPER_GAP_EXPLANATION = """\
Paper figures (Xie et al. 2018, 64x224x224): I3D 108 G, S3D 66.4 G (unverified), S3D-G 71.4 G.
Our I3D (111.2 G, +2.9%) and S3D (64.2 G, -3.3%) agree within the paper's unstated
counting convention (XLA's padding-free count gives 104.9 G and 62.7 G). Our S3D-G is
64.2 G, 10.1% below 71.4 G, and the gap is the first layer, not gating: the 37 gates cost
only C^2 multiply-adds each, 0.001 G per clip in total. We follow the TF-Slim release,
whose S3D-G stem is a full 3x7x7 conv (11.3 G). With a separable stem, 1x7x7 on all 64
frames and then 7x1x1 with stride 2 (19.1 G; torchvision's S3D layout, our
s3d_torchvision), the same network counts 71.9 G, within 0.7% of the paper's S3D-G. So
the paper's 71.4 G fits a separable first layer, which the public code does not use."""


def convention_note(costs: Sequence[ModelCost], batch: int, dtype: str) -> str:
    note = CONVENTIONS.format(batch=batch, dtype=dtype)
    if any(c.model in PAPER_GMACS and (c.frames, c.size) == (PAPER_FRAMES, PAPER_SIZE) for c in costs):
        note += "\n" + PAPER_GAP_EXPLANATION
    return note


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m video_s3d.cost",
        description="Multiply-adds, parameters and training activation memory of a model.",
    )
    parser.add_argument("--model", help="model name (see video_s3d.models.names())")
    parser.add_argument("--frames", type=int, default=PAPER_FRAMES, help="clip length T")
    parser.add_argument("--size", type=int, default=PAPER_SIZE, help="frame height = width")
    parser.add_argument("--num_classes", type=int, default=400)
    parser.add_argument("--batch", type=int, default=1,
                        help="clips per training step (activation memory scales with it)")
    parser.add_argument("--dtype", default="float32", help="compute dtype: float32 | bfloat16 | float16")
    parser.add_argument("--json", action="store_true", help="one JSON object per model, no table")
    parser.add_argument("--all", action="store_true",
                        help="every named (non-tiny) model at 64x224x224, beside the paper")
    parser.add_argument("--models", type=lambda s: [m for m in s.split(",") if m],
                        help="with --all: only these comma-separated models")
    return parser.parse_args(argv)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        chosen = selected_models(args.all, args.model, args.models)
        if min(args.frames, args.size, args.batch, args.num_classes) < 1:
            raise ValueError("--frames, --size, --batch and --num_classes must be positive.")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    frames, size = (PAPER_FRAMES, PAPER_SIZE) if args.all else (args.frames, args.size)
    costs = []
    for i, name in enumerate(chosen):
        start = time.time()
        try:
            cost = measure(name, frames, size, args.num_classes, args.batch, args.dtype)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        costs.append(cost)
        if args.json:
            print(json.dumps(cost.as_json()), flush=True)
        if len(chosen) > 1:
            print(f"[{i + 1}/{len(chosen)}] {name}: {time.time() - start:.1f}s", file=sys.stderr, flush=True)
    if not args.json:
        print(f"Cost per clip at {frames}x{size}x{size}, {args.num_classes} classes")
        print(format_table(costs))
        print(convention_note(costs, args.batch, args.dtype))
    return 0


def cli() -> None:
    """The console script (pyproject.toml)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
