"""The measurements behind `python -m video_s3d.bench` (issue 20), one function per figure.

Every timing here is a ratio of programs measured side by side in alternating rounds of the
same process (a shared CPU makes absolute times meaningless); memory figures come from XLA's
memory analysis of compiled programs that are never run.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import jax

from video_s3d import allocator, models, optim, parallel, train, train_state
from video_s3d.compile_policy import CompilePolicy
from video_s3d.models import bench as model_bench
from video_s3d.models import layers

# `make run`'s shapes (experiments/quickstart.py: tiny_s3dg and tiny_i2d, batch 32, 5 frames,
# 48x48 crops).
QUICKSTART_SHAPE = dict(batch=32, frames=5, size=48)
# XLA's conv gradients everywhere (the CPU default until session 11) and today's CPU default,
# 'auto': the hand-written conv VJP where it measured faster (models/layers.py).
OLD_LOWERING, NEW_LOWERING = "unrolled", "auto"


def compiled_sgd_step(
    name: str,
    batch: int,
    frames: int,
    size: int,
    lowering: str,
    num_classes: int = 400,
    dtype: str = "float32",
):
    """(step, args): a compiled forward+backward+SGD step of model `name` and its inputs."""
    model = models.create(name, num_classes, dtype=dtype)
    tx, step = model_bench.sgd_train_step(model, num_classes)
    with layers.window_ops(lowering):
        args = model_bench.train_step_inputs(model, tx, batch, frames, size, num_classes)
        compiled = jax.jit(step).lower(*args).compile()
    return compiled, args


def _time_ms(run: Callable[[], object], steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        jax.block_until_ready(run())
        times.append((time.perf_counter() - start) * 1e3)
    return times


def alternate(
    programs: dict[str, Callable[[], object]],
    rounds: int,
    steps: int,
    progress: Callable[[str], None] = print,
) -> dict[str, float]:
    """Median ms per call of each program, timed in `rounds` alternating rounds."""
    times = {key: [] for key in programs}
    for run in programs.values():
        jax.block_until_ready(run())  # first run after compile: not timed
    for r in range(rounds):
        for key, run in programs.items():
            times[key] += _time_ms(run, steps)
            progress(f"  round {r + 1}/{rounds} {key}: {statistics.median(times[key]):.0f} ms")
    return {key: statistics.median(values) for key, values in times.items()}


def lowering_speedup(
    name: str,
    batch: int,
    frames: int,
    size: int,
    rounds: int,
    steps: int,
    progress: Callable[[str], None] = print,
) -> dict:
    """Training-step ms of the old and new CPU lowering, side by side."""
    programs = {}
    for lowering in (OLD_LOWERING, NEW_LOWERING):
        start = time.perf_counter()
        compiled, args = compiled_sgd_step(name, batch, frames, size, lowering)
        progress(f"  {name} {lowering}: compiled in {time.perf_counter() - start:.0f} s")
        programs[lowering] = lambda compiled=compiled, args=args: compiled(*args)
    ms = alternate(programs, rounds, steps, progress)
    return {
        "model": name,
        "shape": f"{batch}x{frames}x{size}x{size}",
        "old_ms": ms[OLD_LOWERING],
        "new_ms": ms[NEW_LOWERING],
        "speedup": ms[OLD_LOWERING] / ms[NEW_LOWERING],
    }


# glibc settings that keep freed memory for reuse (one arena, no mmap'd chunks, no trim), the
# older spelling PyTorch users set. PyTorch's step faulted in about 570k fresh pages (2.2 GB)
# per step with the defaults; with these, 6-16k, and its step took 1856 and 2041 ms against
# 2666-3085 ms (session 16, one process each, idle 2-core machine). The bench gives PyTorch
# glibc's defaults, these, and ours (allocator.TUNABLES) and compares us with its best.
TUNED_MALLOC_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(10**11),
}
# PyTorch's allocator settings, by name: each is a fresh environment from glibc's defaults.
TORCH_ALLOCATORS = {
    "glibc defaults": allocator.with_default_allocator,
    "MALLOC_* tuned": lambda env: {**allocator.with_default_allocator(env), **TUNED_MALLOC_ENV},
    "ours (GLIBC_TUNABLES)": lambda env: allocator.with_tuned_allocator(
        allocator.with_default_allocator(env)
    ),
}


def _child_json(argv: list[str], env: dict[str, str], what: str) -> dict:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if result.returncode:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _shape_flags(batch: int, frames: int, size: int, steps: int) -> list[str]:
    return [
        f"--batch_size={batch}",
        f"--num_frames={frames}",
        f"--crop_size={size}",
        f"--steps={steps}",
    ]


def torch_step_ms(
    torch_python: str,
    batch: int,
    frames: int,
    size: int,
    threads: int,
    steps: int,
    env: dict[str, str] | None = None,
) -> dict:
    """torchvision S3D's training step in another interpreter (video_s3d/bench_torch.py),
    in environment `env` (default: this process's)."""
    script = __file__.replace("bench_figures.py", "bench_torch.py")
    return _child_json(
        [torch_python, script, *_shape_flags(batch, frames, size, steps), f"--threads={threads}"],
        dict(os.environ if env is None else env),
        "torch benchmark",
    )


def jax_step_in_child(
    model: str, batch: int, frames: int, size: int, steps: int, lowering: str, env: dict
) -> dict:
    """Our training step in a fresh interpreter (video_s3d/bench_jax.py) started with `env`."""
    argv = [sys.executable, "-m", "video_s3d.bench_jax", *_shape_flags(batch, frames, size, steps)]
    return _child_json(
        [*argv, f"--lowering={lowering}", f"--model={model}"], env, "our step in a child"
    )


def versus_torch(
    torch_python: str | None,
    batch: int,
    frames: int,
    size: int,
    threads: int,
    rounds: int,
    steps: int,
    progress: Callable[[str], None] = print,
    lowerings: tuple[str, ...] = (NEW_LOWERING, OLD_LOWERING),
    model: str = "s3d_torchvision",
) -> dict:
    """`model` (each of `lowerings` in this process; the first is reported as ours) against
    torchvision's S3D, same shapes, in alternating rounds. Each round also times ours (first
    lowering) in a child under the allocator settings this process did not start with
    (video_s3d/allocator.py), and PyTorch under each of TORCH_ALLOCATORS. Ours is the faster
    of the two allocators; PyTorch's, the fastest of its three. Without `torch_python`, only
    ours (torch: None)."""
    if allocator.is_tuned(os.environ):
        here, other = "tuned allocator", "glibc defaults"
        other_env = allocator.with_default_allocator(os.environ)
    else:
        here, other = "glibc defaults", "tuned allocator"
        other_env = allocator.with_tuned_allocator(os.environ)
    ours_here, ours_child = f"{lowerings[0]}, {here}", f"{lowerings[0]}, {other}"
    programs = {}
    for lowering in lowerings:
        start = time.perf_counter()
        compiled, args = compiled_sgd_step(model, batch, frames, size, lowering)
        progress(f"  {model} {lowering}: compiled in {time.perf_counter() - start:.0f} s")
        programs[f"{lowering}, {here}"] = lambda compiled=compiled, args=args: compiled(*args)
    ours = {key: [] for key in [*programs, ours_child]}
    theirs = {name: [] for name in TORCH_ALLOCATORS} if torch_python else {}
    for run in programs.values():
        jax.block_until_ready(run())
    for r in range(rounds):
        for key, run in programs.items():
            ours[key] += _time_ms(run, steps)
            progress(f"  round {r + 1}/{rounds} jax {key}: {statistics.median(ours[key]):.0f} ms")
        child = jax_step_in_child(model, batch, frames, size, steps, lowerings[0], other_env)
        ours[ours_child].append(child["train_ms"])
        progress(f"  round {r + 1}/{rounds} jax {ours_child} (child): {child['train_ms']:.0f} ms")
        for name, make_env in TORCH_ALLOCATORS.items() if torch_python else ():
            result = torch_step_ms(
                torch_python, batch, frames, size, threads, steps, make_env(os.environ)
            )
            theirs[name].append(result)
            progress(f"  round {r + 1}/{rounds} torch, {name}: {result['train_ms']:.0f} ms")
    medians = {key: statistics.median(values) for key, values in ours.items()}
    best = min((ours_here, ours_child), key=medians.get)
    row = {
        "shape": f"{batch}x{frames}x{size}x{size}",
        "threads": threads,
        "lowering": lowerings[0],
        "jax_ms": medians[best],
        "jax_best": best,
        "jax_ms_by_program": medians,
        "torch_ms": None,
    }
    if theirs:
        torch_medians = {n: statistics.median(t["train_ms"] for t in v) for n, v in theirs.items()}
        torch_best = min(torch_medians, key=torch_medians.get)
        row.update(
            torch_version=theirs[torch_best][0]["torch"],
            torch_ms_by_allocator=torch_medians,
            torch_best=torch_best,
            torch_ms=torch_medians[torch_best],
            speed_vs_torch=torch_medians[torch_best] / medians[best],
        )
    return row


def gradient_all_reduces(model_name: str = "tiny_s3dg", frames: int = 4, size: int = 32) -> dict:
    """All-reduces in the compiled data-parallel train step (train.make_train_step) on every
    device, and how many of them carry the parameter-sized gradient vector."""
    from experiments import synthetic_motion  # noqa: PLC0415 -- experiments import this module

    config = synthetic_motion.get_config(f"model={model_name}")
    mesh = parallel.make_mesh()
    model = train_state.create_model(config, 10)
    tx = optim.make_optimizer(config.optim, 10)
    state = jax.eval_shape(lambda: train_state._new_state(model, tx, config, jax.random.key(0)))
    step = train.make_train_step(
        model,
        tx,
        optim.make_schedule(config.optim, 10),
        mesh,
        num_classes=10,
        label_smoothing=0.0,
        sync_batch_norm=config.sync_batch_norm,
        freeze_batch_norm=False,
        seed=0,
        policy=CompilePolicy.from_config(config),
    )
    sharded = parallel.batch_sharded(mesh)
    batch = {
        "video": jax.ShapeDtypeStruct(
            (mesh.size, frames, size, size, 3), "float32", sharding=sharded
        ),
        "label": jax.ShapeDtypeStruct((mesh.size,), "int32", sharding=sharded),
    }
    replicated = parallel.replicated(mesh)
    state = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), state
    )
    hlo = step.lower(state, batch).compile().as_text()
    lines = [line for line in hlo.splitlines() if re.search(r"= .* all-reduce(-start)?\(", line)]
    num_params = sum(leaf.size for leaf in jax.tree.leaves(state.params))
    gradient = [line for line in lines if f"f32[{num_params}]" in line]
    return {
        "model": model_name,
        "devices": mesh.size,
        "sync_batch_norm": config.sync_batch_norm,
        "all_reduces": len(lines),
        "gradient_all_reduces": len(gradient),
    }


def remat_memory(name: str, frames: int, size: int, dtype: str, lowering: str) -> dict:
    """Per-clip memory of the SGD train step with and without per-block remat (compile only)."""
    row = {
        "model": name,
        "shape": f"1x{frames}x{size}x{size}",
        "dtype": dtype,
        "lowering": lowering,
    }
    for remat in (False, True):
        memory = model_bench.train_memory(
            name, frames, size, 1, remat=remat, dtype=dtype, lowering=lowering
        )
        row["remat_temp" if remat else "temp"] = memory["temp"]
        row["remat_peak" if remat else "peak"] = memory["peak"]
    # Activations scale with the batch: the same temp memory holds this many times the clips.
    row["batch_ratio"] = row["temp"] / row["remat_temp"]
    return row
