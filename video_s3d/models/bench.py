r"""Speed of the model zoo on the current device: cost table plus measured step times.

    python -m video_s3d.models.bench                           # every named model, 64x224x224, batch 8
    python -m video_s3d.models.bench --models=tiny_s3dg,tiny_i2d --num_frames=16 \
        --crop_size=64 --batch_size=8
    python -m video_s3d.models.bench --models=i3d,s3d,s3dg --dtype=bfloat16 --json

For each model: multiply-adds per clip, parameters and training activation memory
(video_s3d.cost), compile time, and the median wall time of a jitted forward pass
(eval mode) and of a forward+backward pass (train-mode BN and dropout, gradient of the
softmax cross-entropy w.r.t. all parameters; no optimizer update), on random clips.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import optax

from video_s3d import arguments, cost, models
from video_s3d.errors import UserError


@dataclasses.dataclass(frozen=True)
class BenchResult:
    model: str
    device: str
    batch: int
    frames: int
    size: int
    dtype: str
    gmacs: float  # per clip
    params: int
    activation_bytes: int  # whole batch
    compile_s: float  # forward + train step
    forward_ms: float
    train_ms: float  # forward + backward

    @property
    def train_clips_per_s(self) -> float:
        return self.batch / (self.train_ms / 1e3)


def _median_ms(fn, args, steps: int) -> float:
    jax.block_until_ready(fn(*args))  # warm: first run after compile
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


# LLVM -O0: XLA:CPU compiles ~2.5x faster and runs slower; for smoke runs, not timings.
FAST_COMPILE_OPTIONS = {"xla_backend_optimization_level": 0}


def benchmark(
    name: str,
    frames: int,
    size: int,
    batch: int,
    steps: int = 5,
    num_classes: int = 400,
    dtype: str = "float32",
    fast_compile: bool = False,
) -> BenchResult:
    """Compile and time one model on [batch, frames, size, size, 3] random clips."""
    options = FAST_COMPILE_OPTIONS if fast_compile and jax.default_backend() == "cpu" else None
    model = models.create(name, num_classes, dtype=dtype)
    spent = cost.measure(name, frames, size, num_classes, batch, dtype)
    key_x, key_y, key_init = jax.random.split(jax.random.key(0), 3)
    x = jax.random.uniform(key_x, (batch, frames, size, size, 3), minval=-1.0, maxval=1.0)
    labels = jax.random.randint(key_y, (batch,), 0, num_classes)
    variables = jax.jit(
        lambda x: model.init({"params": key_init}, x, train=False), compiler_options=options
    )(x)

    def forward(variables, x):
        return model.apply(variables, x, train=False)

    def train_grads(params, batch_stats, x, labels):
        def loss_fn(params):
            logits, new_state = model.apply(
                {"params": params, "batch_stats": batch_stats},
                x,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": jax.random.key(1)},
            )
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), new_state

        return jax.value_and_grad(loss_fn, has_aux=True)(params)

    start = time.perf_counter()
    forward_c = jax.jit(forward).lower(variables, x).compile(options)
    train_args = (variables["params"], variables["batch_stats"], x, labels)
    train_c = jax.jit(train_grads).lower(*train_args).compile(options)
    compile_s = time.perf_counter() - start
    return BenchResult(
        model=name,
        device=jax.devices()[0].device_kind,
        batch=batch,
        frames=frames,
        size=size,
        dtype=dtype,
        gmacs=spent.gmacs,
        params=spent.params,
        activation_bytes=spent.activation_bytes,
        compile_s=compile_s,
        forward_ms=_median_ms(forward_c, (variables, x), steps),
        train_ms=_median_ms(train_c, train_args, steps),
    )


def sgd_train_step(model, num_classes: int, learning_rate: float = 0.01):
    """(params, batch_stats, momentum, x, labels) -> same, loss: forward, backward and an
    SGD-with-momentum update, the step PyTorch's `loss.backward(); opt.step()` performs."""
    tx = optax.sgd(learning_rate, momentum=0.9)

    def step(params, batch_stats, opt_state, x, labels):
        def loss_fn(params):
            logits, new_state = model.apply(
                {"params": params, "batch_stats": batch_stats},
                x,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": jax.random.key(1)},
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, new_state["batch_stats"]

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, loss

    return tx, step


def train_step_inputs(
    model, tx, batch: int, frames: int, size: int, num_classes: int, abstract: bool = False
):
    """Arguments of `sgd_train_step`'s step: random clips and freshly initialised variables
    (`abstract`: only their shapes, for compile-only memory analysis)."""
    shape = (batch, frames, size, size, 3)
    key_x, key_y, key_init = jax.random.split(jax.random.key(0), 3)

    def make():
        x = jax.random.uniform(key_x, shape, minval=-1.0, maxval=1.0)
        labels = jax.random.randint(key_y, (batch,), 0, num_classes)
        variables = model.init({"params": key_init}, x, train=False)
        opt_state = tx.init(variables["params"])
        return variables["params"], variables["batch_stats"], opt_state, x, labels

    if abstract:
        return jax.eval_shape(make)
    return jax.jit(
        make, compiler_options=FAST_COMPILE_OPTIONS if jax.default_backend() == "cpu" else None
    )()


def train_memory(
    name: str,
    frames: int,
    size: int,
    batch: int,
    *,
    remat: bool,
    dtype: str = "bfloat16",
    num_classes: int = 400,
    lowering: str = "native",
) -> dict:
    """XLA's memory analysis of the compiled SGD train step (compiled only, never run).

    `lowering` 'native' is the accelerator program (one XLA 3D conv per conv). Returns
    bytes: temp (activations and scratch), argument, output, and peak = their sum less
    what outputs alias (donated) arguments."""
    from video_s3d.models import layers  # noqa: PLC0415 -- avoid a cycle at import

    model = models.create(name, num_classes, dtype=dtype, remat=remat)
    tx, step = sgd_train_step(model, num_classes)
    with layers.window_ops(lowering):
        args = train_step_inputs(model, tx, batch, frames, size, num_classes, abstract=True)
        options = FAST_COMPILE_OPTIONS if jax.default_backend() == "cpu" else None
        compiled = jax.jit(step).lower(*args).compile(options)
    analysis = compiled.memory_analysis()
    temp, argument = analysis.temp_size_in_bytes, analysis.argument_size_in_bytes
    output, alias = analysis.output_size_in_bytes, analysis.alias_size_in_bytes
    return {
        "temp": temp,
        "argument": argument,
        "output": output,
        "peak": temp + argument + output - alias,
    }


def format_table(results: Sequence[BenchResult]) -> str:
    header = (
        f"{'model':<24} {'GMACs/clip':>10} {'params':>11} {'act. mem':>10} {'compile s':>9} "
        f"{'fwd ms':>9} {'fwd+bwd ms':>10} {'train clips/s':>13}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        memory = r.activation_bytes / 2**20
        lines.append(
            f"{r.model:<24} {r.gmacs:10.3f} {r.params:>11,} {memory:8.1f}Mi {r.compile_s:9.1f} "
            f"{r.forward_ms:9.1f} {r.train_ms:10.1f} {r.train_clips_per_s:13.1f}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.models.bench", __doc__.split("\n")[0])
    parser.add_argument(
        "--models",
        type=lambda s: [m for m in s.split(",") if m],
        help="comma-separated model names (default: every named, non-tiny model)",
    )
    parser.add_argument("--num_frames", type=int, default=64)
    parser.add_argument("--crop_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (median)")
    parser.add_argument("--num_classes", type=int, default=400)
    parser.add_argument(
        "--dtype", default="float32", help="compute dtype: float32 | bfloat16 | float16"
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON object per model")
    parser.add_argument(
        "--fast_compile",
        action="store_true",
        help="CPU only: LLVM -O0, ~2.5x faster compiles but slower steps (smoke runs)",
    )
    arguments.alias(parser, "--frames", "--num_frames")
    arguments.alias(parser, "--size", "--crop_size")
    arguments.alias(parser, "--batch", "--batch_size")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = args.models or models.names(include_tiny=False)
    try:
        for name in chosen:
            models.get_spec(name)  # unknown names fail before any compile
        if min(args.num_frames, args.crop_size, args.batch_size, args.steps) < 1:
            raise UserError("--num_frames, --crop_size, --batch_size and --steps must be positive.")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"Device: {jax.devices()[0].device_kind} ({jax.default_backend()}); clips "
        f"{args.batch_size}x{args.num_frames}x{args.crop_size}x{args.crop_size}, {args.dtype}",
        flush=True,
    )
    results = []
    for i, name in enumerate(chosen):
        start = time.time()
        try:
            result = benchmark(
                name,
                args.num_frames,
                args.crop_size,
                args.batch_size,
                args.steps,
                args.num_classes,
                args.dtype,
                args.fast_compile,
            )
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        results.append(result)
        print(
            f"[{i + 1}/{len(chosen)}] {name}: {time.time() - start:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        if args.json:
            print(
                json.dumps(
                    {**dataclasses.asdict(result), "train_clips_per_s": result.train_clips_per_s}
                ),
                flush=True,
            )
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
