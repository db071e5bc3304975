"""A trained classifier as a TensorFlow SavedModel (jax2tf, native serialization).

  python -m video_s3d.export --workdir=runs/s3dg --out=exported/s3dg [--platforms=cpu,cuda]

The serving signature `serving_default` takes `frames`: uint8 [batch, T, H, W, 3] RGB, with
T, H, W fixed by the run's config (num_frames, crop_size) and any batch size; it normalises
them inside with the run's own statistics (`video_s3d.normalization`; [-1, 1] unless the
run set config.data.input_mean / input_std) and returns `logits` and `probabilities`
(float32 [batch, classes]). Clip sampling and cropping stay outside, as in `predict`. The loaded object also carries
`class_names` (a string variable) and `input_shape` ([T, H, W, 3]).

The model is serialized as StableHLO for `--platforms` (default: this machine's backend);
TensorFlow runs it wherever one of them is available. Parameters are stored as TF variables.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from video_s3d import inference, normalization
from video_s3d.errors import UserError

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def build_parser() -> argparse.ArgumentParser:
    parser = inference.argument_parser("video_s3d.export", __doc__)
    parser.add_argument("--out", required=True, help="SavedModel folder to write (must not exist)")
    parser.add_argument(
        "--platforms",
        default=None,
        help=f"comma-separated subset of {','.join(PLATFORMS)} to serialize for "
        f"(default: this machine's JAX backend)",
    )
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.platforms:
        args.platforms = tuple(p.strip() for p in args.platforms.split(",") if p.strip())
        unknown = [p for p in args.platforms if p not in PLATFORMS]
        if unknown or not args.platforms:
            parser.error(
                f"--platforms={','.join(args.platforms)} names unknown platforms "
                f"{unknown}; use a comma-separated subset of {','.join(PLATFORMS)}."
            )
    if os.path.exists(args.out) and os.listdir(args.out):
        parser.error(
            f"--out={args.out} already exists and is not empty; choose a new folder or delete it."
        )
    return args


def serving_function(run: inference.Run):
    """JAX: (variables, uint8 frames [B, T, H, W, 3]) -> (logits, probabilities)."""
    import jax
    import jax.numpy as jnp

    model = run.model
    input_normalization = normalization.from_config(run.config.data)  # the run's mean / std

    def serve(variables, frames):
        video = input_normalization(frames)
        logits = model.apply(variables, video, train=False).astype(jnp.float32)
        return logits, jax.nn.softmax(logits, axis=-1)

    return serve


def export(run: inference.Run, out_dir: str, platforms: tuple[str, ...] | None = None) -> str:
    """Writes the SavedModel to `out_dir`; returns it."""
    import jax
    import tensorflow as tf
    from jax.experimental import jax2tf

    from video_s3d.models import layers

    platforms = tuple(platforms or (_backend_platform(),))
    # CPU-only exports keep the CPU-friendly conv/pool lowerings the model picks on CPU; any
    # accelerator gets XLA's native ops (cuDNN / TPU convolutions), which are also correct on CPU.
    window_ops = "auto" if platforms == ("cpu",) and jax.default_backend() == "cpu" else "native"
    t, h, w, c = run.input_shape
    host_variables = jax.tree.map(np.asarray, run.variables)
    tf_variables = tf.nest.map_structure(lambda v: tf.Variable(v, trainable=False), host_variables)
    with layers.window_ops(window_ops):
        converted = jax2tf.convert(
            serving_function(run),
            with_gradient=False,
            polymorphic_shapes=[None, "(b, ...)"],
            native_serialization_platforms=platforms,
        )

        module = tf.Module()
        module.model_variables = tf_variables
        module.class_names = tf.Variable(run.class_names, trainable=False, dtype=tf.string)
        module.input_shape = tf.Variable([t, h, w, c], trainable=False, dtype=tf.int32)

        @tf.function(
            input_signature=[tf.TensorSpec([None, t, h, w, c], tf.uint8, name="frames")],
            autograph=False,
        )
        def serving_default(frames):
            logits, probabilities = converted(module.model_variables, frames)
            return {"logits": logits, "probabilities": probabilities}

        module.serving_default = serving_default
        concrete = serving_default.get_concrete_function()
    tf.saved_model.save(module, out_dir, signatures={"serving_default": concrete})
    return out_dir


def _backend_platform() -> str:
    import jax

    backend = jax.default_backend()
    return {"gpu": "cuda"}.get(backend, backend)


def main(argv=None) -> int:
    args = parse_args(argv)
    inference.setup_process()
    try:
        run = inference.load_run(args.workdir, step=args.step)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"exporting {run.describe()}", file=sys.stderr, flush=True)
    export(run, args.out, args.platforms)
    t, h, w, c = run.input_shape
    print(
        f"wrote {args.out}: serving_default(frames: uint8 [batch, {t}, {h}, {w}, {c}]) -> "
        f"logits, probabilities [batch, {run.num_classes}]"
    )
    return 0


def cli() -> None:
    """The console script (pyproject.toml)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
