"""Multiply-adds, parameters and training activation memory of a model, and their CLI.

    python -m video_s3d.cost --model=s3dg --num_frames=64 --crop_size=224
    python -m video_s3d.cost --model=s3d_torchvision --num_frames=16 --crop_size=224 --json
    python -m video_s3d.cost --all            # every named model at 64x224x224 vs the paper
    python -m video_s3d.cost --layers         # i3d / s3d / s3dg per layer, the paper gap

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
             Linear in --batch_size.
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

from video_s3d import arguments
from video_s3d.errors import UserError

# The paper's FLOP column (Xie et al. 2018, Kinetics-400 table, 64x224x224; REFERENCE.md
# "Numbers to hold"). Its counting convention is not published.
PAPER_GMACS = {"i3d": 107.89, "s3d": 66.38, "s3dg": 71.38}
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
        raise UserError(
            f"{name} needs at least {min_t} frames of {min_s}x{min_s}; got {frames}x{size}."
        )
    x = jax.ShapeDtypeStruct((batch, frames, size, size, in_channels), jnp.float32)
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    variables = jax.eval_shape(lambda x: model.init(rngs, x, train=False), x)
    params = sum(math.prod(p.shape) for p in jax.tree.leaves(variables["params"]))

    def forward(variables, x):
        return model.apply(variables, x, train=False)

    def train_loss(params, batch_stats, x):
        logits, _ = model.apply(
            {"params": params, "batch_stats": batch_stats},
            x,
            train=True,
            mutable=["batch_stats"],
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
                train_loss,
                variables["params"],
                variables["batch_stats"],
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


def analytic_macs(
    spec, frames: int, size: int, num_classes: int, in_channels: int = 3
) -> dict[str, int]:
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


def gmacs(name: str, frames: int, size: int, num_classes: int = 400, in_channels: int = 3) -> float:
    """Dense multiply-adds per clip in G, from the spec alone: instant, and equal to
    `measure(...).gmacs` (the tests hold them equal)."""
    from video_s3d.models import get_spec

    return sum(analytic_macs(get_spec(name), frames, size, num_classes, in_channels).values()) / 1e9


def valid_taps(size: int, window: int, stride: int, padding: str) -> int:
    """Number of (output position, kernel tap) pairs along one dimension whose input lies
    inside the image: what XLA's cost analysis counts for a convolution."""
    from video_s3d.models.layers import padding_pairs

    ((low, _),) = padding_pairs([size], [window], [stride], padding)
    count = _out_size(size, window, stride, padding)
    return sum(1 for o in range(count) for j in range(window) if 0 <= o * stride - low + j < size)


# ---------------------------------------------------------------- tables


def _memory(num_bytes: int) -> str:
    return f"{num_bytes / 2**30:.2f} GiB" if num_bytes >= 2**30 else f"{num_bytes / 2**20:.1f} MiB"


def stem_label(name: str) -> str:
    from video_s3d.models import get_spec

    stem = get_spec(name).stem
    return {
        "2d": "2D 1x7x7",
        "3d": f"3D {stem.temporal_kernel}x7x7",
        "separable": f"sep 1x7x7+{stem.temporal_kernel}x1x1",
    }[stem.kind]


def format_table(costs: Sequence[ModelCost]) -> str:
    header = (
        f"{'model':<22} {'stem':<18} {'GMACs':>8} {'XLA GMACs':>9} {'paper':>7} "
        f"{'diff':>6} {'params':>11} {'train act. mem':>15}"
    )
    lines = [header, "-" * len(header)]
    for c in costs:
        paper = (
            PAPER_GMACS.get(c.model) if (c.frames, c.size) == (PAPER_FRAMES, PAPER_SIZE) else None
        )
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

# The account of the gap to the paper's figures, from counts (the README quotes it).
PAPER_GAP_ACCOUNT = """\
Paper's FLOP column (64x224x224; convention not published): I3D 107.89, S3D 66.38, S3D-G
71.38 G. Our dense multiply-adds of the TF-Slim structure: I3D 111.15 (+3.0%), S3D 64.18
(-3.3%), S3D-G 64.18 (-10.1%). The per-layer table (--layers) shows the whole story: S3D-G
is S3D plus 37 self-gates, and a gate costs C^2 multiply-adds once per clip (it acts on the
pooled vector), 0.0012 G in all; every other row is identical. So nothing in the public
S3D-G structure accounts for the paper's 5.0 G between S3D and S3D-G, and we do not claim an
explanation. Two counted hypotheses, neither confirmed: (a) a separable first layer
(1x7x7 on all 64 frames then 7x1x1 stride 2; torchvision's layout) gives 71.9 G, but it
would move S3D to the same 71.9 G, so it cannot explain a gap between the two; (b) counting
each gate's C x C matrix at every position (as a 1x1x1 conv before the pooling, which gives
the same output because pooling and the matrix commute) adds {gate_positions:.2f} G, S3D-G
{gate_total:.2f} G. I3D and S3D sit within 3.3% of the paper, the usual spread between
counting tools (XLA's padding-free count gives 104.9 and 62.7 G)."""


def gates_at_every_position_gmacs(name: str, frames: int, size: int) -> float:
    """Hypothesis (b) of PAPER_GAP_ACCOUNT: extra G multiply-adds if every gate's C x C
    product were counted at every (t, h, w) position of its input instead of once."""
    from video_s3d.models import get_spec

    spec = get_spec(name)
    total = 0
    for layer_name, shape in layer_output_shapes(name, frames, size).items():
        layer = dict(zip(_layer_names(), spec.layers)).get(layer_name)
        if layer is None or not layer.gating:
            continue
        t, h, w, _ = shape
        if layer_name == "Conv_2c":
            total += t * h * w * spec.channels(192) ** 2
        else:
            from video_s3d.models.spec import INCEPTION_CHANNELS

            b0, _, b1, _, b2, b3 = (spec.channels(x) for x in INCEPTION_CHANNELS[layer_name])
            total += t * h * w * sum(c * c for c in (b0, b1, b2, b3)) - sum(
                c * c for c in (b0, b1, b2, b3)
            )
    return total / 1e9


def _layer_names():
    from video_s3d.models.spec import LAYER_NAMES

    return LAYER_NAMES


def layer_output_shapes(
    name: str, frames: int, size: int, num_classes: int = 400
) -> dict[str, tuple[int, ...]]:
    """Per-endpoint output shape (T, H, W, C) of one clip, by abstract evaluation."""
    import jax
    import jax.numpy as jnp

    from video_s3d import models

    model = models.create(name, num_classes)
    x = jax.ShapeDtypeStruct((1, frames, size, size, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
    _, endpoints = jax.eval_shape(
        lambda v, x: model.apply(v, x, return_endpoints=True), variables, x
    )
    return {k: tuple(v.shape[1:]) for k, v in endpoints.items() if len(v.shape) == 5}


def inference_activation_bytes(
    name: str, frames: int, size: int, num_classes: int = 400, bytes_per_value: int = 4
) -> int:
    """Estimate of the activation memory of one evaluation pass over one clip: the largest
    input + output pair of consecutive endpoints (float32 by default). A lower bound on what
    XLA keeps (an Inception block also holds its branches), for sizing an all-frames pass."""
    sizes = [frames * size * size * 3] + [
        math.prod(shape) for shape in layer_output_shapes(name, frames, size, num_classes).values()
    ]
    return max(a + b for a, b in zip(sizes, sizes[1:])) * bytes_per_value


def format_layer_table(
    names: Sequence[str], frames: int = PAPER_FRAMES, size: int = PAPER_SIZE, num_classes: int = 400
) -> str:
    """G multiply-adds per layer (analytic_macs), one column per model, and the total."""
    from video_s3d.models import get_spec

    per_model = {n: analytic_macs(get_spec(n), frames, size, num_classes) for n in names}
    layers = list(next(iter(per_model.values())))
    header = f"{'layer':<10}" + "".join(f"{n:>14}" for n in names)
    lines = [
        f"G multiply-adds per layer at {frames}x{size}x{size}, {num_classes} classes",
        header,
        "-" * len(header),
    ]
    for layer in layers:
        lines.append(f"{layer:<10}" + "".join(f"{per_model[n][layer] / 1e9:14.4f}" for n in names))
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<10}" + "".join(f"{sum(per_model[n].values()) / 1e9:14.4f}" for n in names)
    )
    paper = [PAPER_GMACS.get(n) for n in names]
    if any(paper) and (frames, size) == (PAPER_FRAMES, PAPER_SIZE):
        lines.append(f"{'paper':<10}" + "".join(f"{p:14.2f}" if p else f"{'':>14}" for p in paper))
    return "\n".join(lines)


def paper_gap_account() -> str:
    extra = gates_at_every_position_gmacs("s3dg", PAPER_FRAMES, PAPER_SIZE)
    return PAPER_GAP_ACCOUNT.format(
        gate_positions=extra, gate_total=gmacs("s3dg", PAPER_FRAMES, PAPER_SIZE) + extra
    )


def convention_note(costs: Sequence[ModelCost], batch: int, dtype: str) -> str:
    note = CONVENTIONS.format(batch=batch, dtype=dtype)
    if any(
        c.model in PAPER_GMACS and (c.frames, c.size) == (PAPER_FRAMES, PAPER_SIZE) for c in costs
    ):
        note += "\n" + paper_gap_account()
    return note


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser(
        "video_s3d.cost", "Multiply-adds, parameters and training activation memory of a model."
    )
    parser.add_argument("--model", help="model name (see video_s3d.models.names())")
    parser.add_argument("--num_frames", type=int, default=PAPER_FRAMES, help="clip length T")
    parser.add_argument("--crop_size", type=int, default=PAPER_SIZE, help="frame height = width")
    parser.add_argument("--num_classes", type=int, default=400)
    parser.add_argument(
        "--batch_size",
        type=int,
        default=1,
        help="clips per training step (activation memory scales with it)",
    )
    parser.add_argument(
        "--dtype", default="float32", help="compute dtype: float32 | bfloat16 | float16"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per model, no table")
    parser.add_argument(
        "--all",
        action="store_true",
        help="every named (non-tiny) model at 64x224x224, beside the paper",
    )
    parser.add_argument(
        "--models",
        type=lambda s: [m for m in s.split(",") if m],
        help="with --all or --layers: only these comma-separated models",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="per-layer multiply-adds of i3d, s3d, s3dg (or --models) and the "
        "account of the gap to the paper's figures; nothing compiled",
    )
    arguments.alias(parser, "--frames", "--num_frames")
    arguments.alias(parser, "--size", "--crop_size")
    arguments.alias(parser, "--batch", "--batch_size")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def selected_models(all_models: bool, model: str | None, subset: Sequence[str] | None) -> list[str]:
    from video_s3d import models

    if all_models:
        chosen = list(subset) if subset else models.names(include_tiny=False)
    elif model:
        chosen = [model]
    else:
        raise UserError("Pass --model=NAME (e.g. --model=s3dg) or --all.")
    for name in chosen:
        models.get_spec(name)  # Unknown name -> one clear UserError before any work.
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.layers:
        try:
            chosen = selected_models(True, None, args.models or ["i3d", "s3d", "s3dg"])
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(format_layer_table(chosen, args.num_frames, args.crop_size, args.num_classes))
        print(paper_gap_account())
        return 0
    try:
        chosen = selected_models(args.all, args.model, args.models)
        if min(args.num_frames, args.crop_size, args.batch_size, args.num_classes) < 1:
            raise UserError(
                "--num_frames, --crop_size, --batch_size and --num_classes must be positive."
            )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    frames, size = (PAPER_FRAMES, PAPER_SIZE) if args.all else (args.num_frames, args.crop_size)
    costs = []
    for i, name in enumerate(chosen):
        start = time.time()
        try:
            cost = measure(name, frames, size, args.num_classes, args.batch_size, args.dtype)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        costs.append(cost)
        if args.json:
            print(json.dumps(cost.as_json()), flush=True)
        if len(chosen) > 1:
            print(
                f"[{i + 1}/{len(chosen)}] {name}: {time.time() - start:.1f}s",
                file=sys.stderr,
                flush=True,
            )
    if not args.json:
        print(f"Cost per clip at {frames}x{size}x{size}, {args.num_classes} classes")
        print(format_table(costs))
        print(convention_note(costs, args.batch_size, args.dtype))
    return 0


def cli() -> None:
    """The console script (pyproject.toml)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
