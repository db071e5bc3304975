r"""PyTorch's side of `python -m video_s3d.bench`: torchvision's S3D training step timings.

Run by the bench in a separate interpreter that has torch and torchvision (this project's
environment has neither), e.g.
  /work/torchvenv/bin/python video_s3d/bench_torch.py --num_frames=16 --crop_size=224 \
      --batch_size=2 --threads=2
Prints one JSON object: the median milliseconds of a training step (forward, backward and
an SGD-with-momentum update, train-mode BatchNorm) over --steps steps after one warm-up.
Imports nothing from video_s3d, so it runs as a plain script.
"""

import argparse
import json
import statistics
import time

import torch


def _import_torchvision():
    """torchvision, even when its compiled ops (_C.so) cannot load: PyPI's Linux torchvision
    links CUDA torch, and beside a CPU-only torch its import then fails registering fake
    kernels for ops that do not exist. S3D uses plain torch.nn layers, none of those ops, so
    the registrations are skipped in that case only."""
    try:
        import torchvision  # noqa: PLC0415

        return torchvision
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
    import sys  # noqa: PLC0415

    for name in [m for m in sys.modules if m.startswith("torchvision")]:
        del sys.modules[name]
    real = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: lambda fn: fn
    try:
        import torchvision  # noqa: PLC0415
    finally:
        torch.library.register_fake = real
    return torchvision


torchvision = _import_torchvision()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # Flag names follow video_s3d/arguments.py (not imported: this runs without video_s3d).
    parser.add_argument("--num_frames", type=int, default=16)
    parser.add_argument("--crop_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num_classes", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.video.s3d(weights=None, num_classes=args.num_classes).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(args.batch_size, 3, args.num_frames, args.crop_size, args.crop_size) * 2 - 1
    labels = torch.randint(0, args.num_classes, (args.batch_size,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    print(
        json.dumps(
            {
                "train_ms": statistics.median(times),
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
