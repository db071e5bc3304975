"""Two-stream evaluation: an RGB run and a Flow run over the same videos, fused per video.

    python -m video_s3d.two_stream --rgb_workdir=runs/rgb --flow_workdir=runs/flow \
        [--step=best] [--fusion=logits|softmax] [--split=validation] [--out=fused.json]

Each stream is evaluated as `--mode=eval` evaluates it (its own config: dataset, views, crops;
logits averaged over a video's views); the flow run reads its dataset's flow twin (e.g.
synthetic_motion/motion_tiny_flow beside motion_tiny, hmdb51/split1_flow beside split1), which
holds the same videos. Fusion, per video:
  logits (default): the mean of the two streams' logits, as the I3D release's two-stream
    evaluation does (deepmind/kinetics-i3d tf_v1/evaluate_sample.py, eval_type 'joint':
    `rgb_logits + flow_logits`, then softmax; the sum ranks classes as the mean does);
  softmax: the mean of the two streams' softmax scores, the fusion by averaging of the
    original two-stream ConvNets (Simonyan & Zisserman, NIPS 2014).
Prints each stream's video top-1 / top-5 beside the fused ones.
"""

from __future__ import annotations

import argparse
import json
import sys

import jax
import numpy as np

from video_s3d.errors import UserError

FUSIONS = ("logits", "softmax")


def fuse(rgb_logits: np.ndarray, flow_logits: np.ndarray, fusion: str = "logits") -> np.ndarray:
    """[videos, classes] fused scores of the two streams (see the module docstring)."""
    if fusion == "logits":
        return (np.asarray(rgb_logits) + np.asarray(flow_logits)) / 2
    if fusion == "softmax":
        from video_s3d.inference import softmax

        return (softmax(np.asarray(rgb_logits)) + softmax(np.asarray(flow_logits))) / 2
    raise UserError(f"fusion={fusion!r}: use one of {FUSIONS}.")


def probabilities(rgb_logits, flow_logits, fusion: str = "logits") -> np.ndarray:
    """Class probabilities of the fused streams: softmax of the mean logits, or the mean of
    the softmax scores."""
    from video_s3d.inference import softmax

    fused = fuse(rgb_logits, flow_logits, fusion)
    return softmax(fused) if fusion == "logits" else fused


def check_pair(rgb_run, flow_run) -> None:
    """A UserError unless `rgb_run` is an RGB run and `flow_run` a flow run of the same classes."""

    if rgb_run.modality != "rgb" or flow_run.modality != "flow":
        raise UserError(
            f"Two-stream prediction takes an RGB run ({rgb_run.workdir} is {rgb_run.modality}) "
            f"and a flow run ({flow_run.workdir} is {flow_run.modality}); swap or fix them."
        )
    if rgb_run.class_names != flow_run.class_names:
        raise UserError(
            f"{rgb_run.workdir} and {flow_run.workdir} have different classes; fuse two runs "
            "trained on the same dataset."
        )


def stream_logits(workdir: str, step: str, split: str | None = None) -> dict:
    """A run's per-video logits over its eval split: {'video_index', 'logits', 'labels', ...}."""
    from video_s3d import evaluate, inference, inputs, normalization, parallel
    from video_s3d.compile_policy import CompilePolicy

    run = inference.load_run(workdir, step=step)
    config = run.config
    inputs.ensure_ready(config.data)
    mesh = parallel.make_mesh()
    variables = jax.device_put(run.variables, parallel.replicated(mesh))
    eval_step = evaluate.make_eval_step(
        run.model,
        mesh,
        CompilePolicy.from_config(config),
        normalization.from_config(config.data),
    )
    batches = inputs.eval_batches(
        config.data,
        local_batch=parallel.local_batch_size(config.eval_batch_size, mesh),
        reverse_time=False,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        split=split,
    )
    merged, _ = evaluate.run_eval(eval_step, variables, batches, mesh, run.num_classes)
    return {
        **merged,
        "run": f"{config.model.name} step {run.step} ({run.step_choice}) on {config.data.name}",
        "modality": inputs.modality(config.data),
    }


def fuse_streams(rgb: dict, flow: dict, fusion: str = "logits") -> dict:
    """Fused per-video scores and every stream's video top-1 / top-5; a ValueError when the
    two runs did not see the same videos with the same labels."""
    from video_s3d.evaluate import topk_correct

    if not np.array_equal(rgb["video_index"], flow["video_index"]) or not np.array_equal(
        rgb["labels"], flow["labels"]
    ):
        raise UserError(
            f"The RGB run ({rgb['run']}) and the flow run ({flow['run']}) evaluated different "
            f"videos or labels ({len(rgb['labels'])} vs {len(flow['labels'])}); evaluate both "
            "on the same dataset's RGB and flow configs and the same split."
        )
    scores = {
        "rgb": rgb["logits"],
        "flow": flow["logits"],
        "rgb+flow": fuse(rgb["logits"], flow["logits"], fusion),
    }
    labels = rgb["labels"]
    metrics = {
        name: {
            "video_top1": float(topk_correct(s, labels, 1).mean()),
            "video_top5": float(topk_correct(s, labels, min(5, s.shape[1])).mean()),
        }
        for name, s in scores.items()
    }
    return {"fusion": fusion, "num_videos": int(len(labels)), "metrics": metrics, "scores": scores}


def table(result: dict, runs: dict[str, str]) -> str:
    lines = [f"{'stream':<10} {'video top-1':>11} {'video top-5':>11}  run"]
    for name, m in result["metrics"].items():
        run = runs.get(name, f"fused: mean of {result['fusion']}")
        lines.append(
            f"{name:<10} {100 * m['video_top1']:>10.1f}% {100 * m['video_top5']:>10.1f}%  {run}"
        )
    lines.append(f"({result['num_videos']} videos)")
    return "\n".join(lines)


def evaluate_two_stream(
    rgb_workdir: str,
    flow_workdir: str,
    *,
    step: str = "best",
    fusion: str = "logits",
    split: str | None = None,
    flow_step: str | None = None,
) -> tuple[dict, str]:
    """Evaluates both runs (the flow run at `flow_step`, default `step`), fuses them;
    (result, printed table)."""
    from video_s3d import inference, inputs

    if fusion not in FUSIONS:
        raise UserError(f"fusion={fusion!r}: use one of {FUSIONS}.")
    for workdir, want in ((rgb_workdir, "rgb"), (flow_workdir, "flow")):  # before any work
        where, _ = inference._where_is_the_run(workdir)  # pylint: disable=protected-access
        modality = inputs.modality(inference.load_config(where).data)
        if modality != want:
            raise UserError(
                f"--{want}_workdir={workdir} holds a {modality} run; pass the {want} run there."
            )
    rgb = stream_logits(rgb_workdir, step, split)
    flow = stream_logits(flow_workdir, step if flow_step is None else flow_step, split)
    result = fuse_streams(rgb, flow, fusion)
    return result, table(result, {"rgb": rgb["run"], "flow": flow["run"]})


def build_parser() -> argparse.ArgumentParser:
    from video_s3d import arguments

    parser = arguments.parser("video_s3d.two_stream", __doc__)
    parser.add_argument("--rgb_workdir", required=True, help="workdir of the RGB run")
    parser.add_argument("--flow_workdir", required=True, help="workdir of the flow run")
    parser.add_argument("--step", default="best", help="best | latest | a step (both runs)")
    parser.add_argument("--fusion", default="logits", choices=FUSIONS)
    parser.add_argument("--split", default=None, help="default: each run's eval split")
    parser.add_argument("--out", default=None, help="also write the metrics to this JSON")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from video_s3d import inference

    inference.setup_process()
    try:
        result, shown = evaluate_two_stream(
            args.rgb_workdir,
            args.flow_workdir,
            step=args.step,
            fusion=args.fusion,
            split=args.split,
        )
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(shown)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in result.items() if k != "scores"}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
