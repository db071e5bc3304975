r"""Training-step throughput per model: real input pipeline vs in-memory clips, side by side.

  python -m video_s3d.train_bench                                   # tiny_s3dg, tiny_i2d
  python -m video_s3d.train_bench --models=s3dg,i3d --batch_size=8 --num_frames=64 \
      --crop_size=224 --dataset=kinetics400 --data_dir=...        # paper size (accelerator)

For each model the real training step (the same jit(shard_map) program as train.py, on every
device) runs fed three ways: `input only` iterates the tf.data pipeline without training,
`in-memory` trains on clips already in host memory (compute only), `pipeline` trains on the
real pipeline. If `pipeline` is close to `in-memory` the run is compute-bound; if it is close
to `input only` the input pipeline is the bottleneck. Compilation and the first steps are
left out of every timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import jax

from experiments import synthetic_motion
from video_s3d import arguments, inputs, normalization, optim, parallel, runtime, train, train_state
from video_s3d.compile_policy import CompilePolicy


def bench_config(model: str, args: argparse.Namespace):
    config = synthetic_motion.get_config(f"model={model}")
    config.data.name = args.dataset
    config.data.data_dir = args.data_dir
    config.data.num_frames = args.num_frames
    config.data.stride = args.stride
    config.data.crop_size = args.crop_size
    config.data.train_crop = args.train_crop
    config.model.dtype = args.dtype
    config.batch_size = args.batch_size
    config.num_train_steps = args.steps + args.warmup
    return config


def _timed(run_steps, steps: int) -> float:
    start = time.perf_counter()
    run_steps(steps)
    return time.perf_counter() - start


def bench_model(model_name: str, args: argparse.Namespace, mesh) -> list[dict]:
    """Rows for one model: input only, in-memory, pipeline."""
    config = bench_config(model_name, args)
    parallel.check_global_batch(config.batch_size, mesh)
    inputs.ensure_ready(config.data)
    info = inputs.dataset_info(config.data)
    model = train_state.create_model(config, info.num_classes)
    tx = optim.make_optimizer(config.optim, config.num_train_steps)
    state = train_state.create_state(model, tx, config, mesh, jax.random.key(0))
    step_fn = train.make_train_step(
        model,
        tx,
        optim.make_schedule(config.optim, config.num_train_steps),
        mesh,
        num_classes=info.num_classes,
        label_smoothing=0.0,
        sync_batch_norm=config.sync_batch_norm,
        freeze_batch_norm=False,
        seed=0,
        policy=CompilePolicy.from_config(config),
        input_normalization=normalization.from_config(config.data),
    )
    local_batch = parallel.local_batch_size(config.batch_size, mesh)
    where = dict(
        local_batch=local_batch,
        seed=0,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    memory_data = config.data.copy_and_resolve_references()
    memory_data.name = inputs.IN_MEMORY
    memory_data.num_classes = info.num_classes
    sources = {
        "in-memory": inputs.train_iterator(memory_data, **where),
        "pipeline": inputs.train_iterator(config.data, **where),
    }

    holder = {"state": state}

    def train_on(source):
        def run(n):
            metrics = None
            for _ in range(n):
                batch = next(source)
                batch = parallel.host_to_global(
                    {key: batch[key] for key in ("video", "label", "flip") if key in batch}, mesh
                )
                holder["state"], metrics = step_fn(holder["state"], batch)
            jax.block_until_ready(metrics)

        return run

    def input_only(n):
        for _ in range(n):
            next(sources["pipeline"])

    rows = []
    compile_start = time.perf_counter()
    train_on(sources["in-memory"])(1)  # compiles; the same program serves both sources
    compile_seconds = time.perf_counter() - compile_start
    for label, run in (
        ("input only", input_only),
        ("in-memory", train_on(sources["in-memory"])),
        ("pipeline", train_on(sources["pipeline"])),
    ):
        run(args.warmup)
        seconds = _timed(run, args.steps)
        rows.append(
            {
                "model": model_name,
                "feed": label,
                "devices": mesh.size,
                "batch_size": config.batch_size,
                "num_frames": config.data.num_frames,
                "crop_size": config.data.crop_size,
                "dtype": config.model.dtype,
                "step_ms": 1000 * seconds / args.steps,
                "clips_per_sec": args.steps * config.batch_size / seconds,
                "compile_s": compile_seconds if label != "input only" else None,
            }
        )
        print(
            f"  {model_name:<12} {label:<10} {rows[-1]['clips_per_sec']:8.1f} clips/s", flush=True
        )
    return rows


def format_table(rows: Sequence[dict]) -> str:
    lines = [f"{'model':<14}{'feed':<12}{'step ms':>10}{'clips/s':>10}{'bound':>16}", "-" * 62]
    by_model: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["feed"]] = r
    for model, feeds in by_model.items():
        memory, piped = feeds["in-memory"], feeds["pipeline"]
        # Input-bound when feeding the real pipeline costs more than a fifth of the throughput.
        bound = "input" if piped["clips_per_sec"] < 0.8 * memory["clips_per_sec"] else "compute"
        for feed in ("input only", "in-memory", "pipeline"):
            r = feeds[feed]
            lines.append(
                f"{model:<14}{feed:<12}{r['step_ms']:>10.1f}{r['clips_per_sec']:>10.1f}"
                f"{bound if feed == 'pipeline' else '':>16}"
            )
    first = rows[0]
    lines.append(
        f"({first['devices']} device(s), global batch {first['batch_size']}, "
        f"{first['num_frames']} frames at {first['crop_size']}x{first['crop_size']}, "
        f"{first['dtype']}; backend {jax.default_backend()})"
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.train_bench", __doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny_s3dg,tiny_i2d")
    parser.add_argument("--dataset", default="synthetic_motion/motion")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch_size", type=int, default=32, help="global batch")
    # Defaults: the quickstart's clips (experiments/quickstart.py).
    parser.add_argument("--num_frames", type=int, default=5)
    parser.add_argument("--stride", type=int, default=7)
    parser.add_argument("--crop_size", type=int, default=48)
    parser.add_argument(
        "--train_crop",
        default="random_resized",
        choices=("paper", "random_resized"),
        help="training crop (config.data.train_crop)",
    )
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--steps", type=int, default=10, help="timed steps per feed")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per feed")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    arguments.alias(parser, "--output", "--out")
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runtime.hide_accelerators_from_tf()
    runtime.quiet_library_notices()
    mesh = parallel.make_mesh()
    rows = []
    for name in args.models:
        print(f"benchmarking {name} ...", flush=True)
        rows.extend(bench_model(name, args, mesh))
    print()
    print(format_table(rows))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
