"""TV-L1 throughput: our JAX program against OpenCV's DualTVL1, same frames, same settings.

    python -m video_s3d.flow.bench                     # 256 x 340 (Kinetics' 4:3 at 256 short
                                                       # side), 8 pairs, OpenCV's defaults
    python -m video_s3d.flow.bench --pairs=4 --batch_size=4 --nscales=3

Prints frame pairs per second for OpenCV (CPU, its own thread pool) and for ours on every JAX
backend present (CPU always; GPU / TPU when there is one), the compile time apart, and the mean
end-point error between our flow and OpenCV's. The frames are a panning texture with a disc
moving against it. Both implementations stop iterating at OpenCV's tolerance, so the speed depends
somewhat on the content (ours: a batch runs until its slowest pair converges); the EPE is an
agreement check, not an accuracy claim.
On a shared machine the numbers are ratios measured side by side in one run, not absolutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from video_s3d import arguments


def scene(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [T, H, W] grayscale: a sinusoid texture panning right, a disc moving left."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    waves = [
        (rng.uniform(0, np.pi), 2 * np.pi / rng.uniform(6, 40), rng.uniform(0, 6.3))
        for _ in range(16)
    ]

    def texture(xs, ys):
        value = sum(np.sin(f * (np.cos(a) * xs + np.sin(a) * ys) + p) for a, f, p in waves)
        return 127.5 + 127.5 * value / 16 * 2.5

    frames = []
    for t in range(num_frames):
        background = texture(x - 2.0 * t, y - 0.5 * t)
        disc = (x - width / 2 + 3.0 * t) ** 2 + (y - height / 2) ** 2 < (height / 5) ** 2
        frames.append(np.where(disc, texture(x + 3.0 * t + 50, y + 1.0 * t), background))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def opencv_flow(gray: np.ndarray, params) -> tuple[np.ndarray, float]:
    import cv2

    algorithm = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=params.tau,
        lambda_=params.lambda_,
        theta=params.theta,
        nscales=params.nscales,
        warps=params.warps,
        epsilon=params.epsilon,
        innnerIterations=params.inner_iterations,
        outerIterations=params.outer_iterations,
        scaleStep=params.scale_step,
        gamma=0.0,
        medianFiltering=params.median_filtering,
    )
    flows = []
    start = time.perf_counter()
    for i, (a, b) in enumerate(zip(gray[:-1], gray[1:])):
        flows.append(algorithm.calc(a, b, None))
        print(
            f"  opencv pair {i + 1}/{len(gray) - 1}: "
            f"{(time.perf_counter() - start) / (i + 1):.2f} s/pair",
            flush=True,
        )
    return np.stack(flows), time.perf_counter() - start


def jax_flow(gray: np.ndarray, params, device, batch: int, repeats: int):
    import jax

    from video_s3d.flow import tvl1_flow

    first, second = gray[:-1], gray[1:]
    chunks = [
        (
            jax.device_put(first[i : i + batch], device),
            jax.device_put(second[i : i + batch], device),
        )
        for i in range(0, len(first), batch)
    ]
    start = time.perf_counter()
    compiled = {}
    for a, b in chunks:
        if a.shape not in compiled:
            compiled[a.shape] = tvl1_flow.lower(a, b, params).compile()
    compile_s = time.perf_counter() - start
    print(f"  jax {device.platform}: compiled in {compile_s:.1f} s", flush=True)
    start = time.perf_counter()
    for r in range(repeats):
        flows = [compiled[a.shape](a, b) for a, b in chunks]
        jax.block_until_ready(flows)
        print(
            f"  jax {device.platform} pass {r + 1}/{repeats}: "
            f"{(time.perf_counter() - start) / (r + 1):.2f} s/pass",
            flush=True,
        )
    seconds = (time.perf_counter() - start) / repeats
    return np.concatenate([np.asarray(f) for f in flows]), seconds, compile_s


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.flow.bench", __doc__.split("\n\n")[0])
    parser.add_argument(
        "--short_side", type=int, default=256, help="frame height; width is 4/3 of it"
    )
    parser.add_argument("--pairs", type=int, default=8, help="frame pairs timed per implementation")
    parser.add_argument(
        "--batch_size", type=int, default=8, help="pairs per call of our jitted program"
    )
    parser.add_argument(
        "--nscales", type=int, default=5, help="pyramid levels (OpenCV's default: 5)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="timed passes over the pairs (ours)")
    arguments.alias(parser, "--batch", "--batch_size")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    import cv2
    import jax

    from video_s3d.flow import TVL1Params, pyramid_shapes

    height = args.short_side
    width = int(round(height * 4 / 3))
    params = dataclasses.replace(TVL1Params(), nscales=args.nscales)
    pairs = args.pairs
    gray = scene(pairs + 1, height, width)
    levels = len(pyramid_shapes(height, width, params))
    print(
        f"TV-L1 on {pairs} pairs of {height}x{width} ({levels} levels, warps {params.warps}, "
        f"{params.outer_iterations}x{params.inner_iterations} iterations, median "
        f"{params.median_filtering}); OpenCV {cv2.__version__} with {cv2.getNumThreads()} "
        f"threads; JAX {jax.__version__}",
        flush=True,
    )

    reference, opencv_s = opencv_flow(gray, params)
    rows = [("OpenCV DualTVL1", "cpu", pairs / opencv_s, "-", 0.0)]
    backends = ["cpu"] + [b for b in ("gpu", "tpu") if _has_backend(jax, b)]
    for backend in backends:
        device = jax.devices(backend)[0]
        ours, seconds, compile_s = jax_flow(gray, params, device, args.batch_size, args.repeats)
        epe = float(np.linalg.norm(ours - reference, axis=-1).mean())
        rows.append(
            (
                f"ours (JAX, batch {args.batch_size})",
                f"{backend} ({device.device_kind})",
                pairs / seconds,
                f"{compile_s:.1f}",
                epe,
            )
        )

    print(
        f"\n{'implementation':<24} {'device':<28} {'pairs/s':>9} {'compile s':>10} "
        f"{'EPE vs OpenCV (px)':>19}"
    )
    for name, device, rate, compile_s, epe in rows:
        print(f"{name:<24} {device:<28} {rate:>9.3f} {compile_s:>10} {epe:>19.4f}")
    motion = float(np.linalg.norm(reference, axis=-1).mean())
    print(f"(mean motion in OpenCV's flow: {motion:.2f} px)")


def _has_backend(jax, name: str) -> bool:
    try:
        return bool(jax.devices(name))
    except RuntimeError:
        return False


if __name__ == "__main__":
    main()
