"""Per-video features from any endpoint of a trained run, saved to .npz and drawn in 2D.

  python -m video_s3d.features --workdir=runs/s3dg --video=videos/ --endpoint=Mixed_5c \
      --out=features.npz [--plot=features.png] [--projection=tsne|pca]

A video's feature is the endpoint's activation averaged over time and space, then over the
evaluation views (sampled as `predict` samples them). With a folder-per-class layout
(videos/<class>/*.mp4, or a glob spanning several folders) the folder names are the labels.
The .npz holds: features [N, C] float32, videos [N] paths, labels [N] (only when known),
logits [N, classes], predictions [N] class indices, predicted_labels [N], class_names,
endpoint, step, failed (paths that could not be read). The plot is the paper's feature
visualisation: a 2D t-SNE (default; `video_s3d.projection`, scikit-learn) or PCA of the
features, one colour per label (per predicted class when labels are unknown).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from video_s3d import arguments, inference, projection
from video_s3d.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = inference.argument_parser("video_s3d.features", __doc__)
    arguments.add_video(parser, old_name="--videos")
    parser.add_argument(
        "--endpoint",
        default="Mixed_5c",
        help="layer whose output is the feature (PreLogits: the pooled input of the classifier)",
    )
    parser.add_argument("--out", required=True, help="where to write the .npz")
    parser.add_argument("--plot", default=None, help="also draw the features in 2D to this PNG")
    parser.add_argument(
        "--projection",
        default="tsne",
        choices=projection.METHODS,
        help="2D map for --plot (t-SNE falls back to PCA below 5 videos)",
    )
    arguments.add_views(parser)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.out.endswith(".npz"):
        parser.error(f"--out={args.out} must end in .npz (numpy.savez adds it otherwise).")
    if args.plot and not args.plot.lower().endswith(".png"):
        parser.error(f"--plot={args.plot} must end in .png.")
    return args


def extract(
    run: inference.Run, videos: list[tuple[str, str | None]], endpoint: str, progress=None
) -> dict[str, np.ndarray]:
    """The .npz contents for `videos` (unreadable ones listed under 'failed')."""
    rows = {"features": [], "logits": [], "videos": [], "labels": []}
    failed = []
    for index, path, label, views, error in inference.iterate_videos(run, videos):
        if error is not None:
            failed.append(path)
            if progress:
                progress(f"[{index + 1}/{len(videos)}] {path}: unreadable video ({error}); skipped")
            continue
        logits, feature = run.classify(views, endpoint=endpoint)
        rows["features"].append(feature.astype(np.float32))
        rows["logits"].append(logits.astype(np.float32))
        rows["videos"].append(path)
        rows["labels"].append(label or "")
        if progress:
            progress(f"[{index + 1}/{len(videos)}] {path}")
    logits = np.array(rows["logits"], np.float32).reshape(-1, run.num_classes)
    predictions = logits.argmax(-1).astype(np.int64)
    out = {
        "features": (
            np.stack(rows["features"]) if rows["features"] else np.zeros((0, 0), np.float32)
        ),
        "videos": np.array(rows["videos"], dtype=str),
        "logits": logits,
        "predictions": predictions,
        "predicted_labels": np.array([run.class_names[i] for i in predictions], dtype=str),
        "class_names": np.array(run.class_names, dtype=str),
        "endpoint": np.array(endpoint),
        "step": np.array(run.step),
        "failed": np.array(failed, dtype=str),
    }
    if any(rows["labels"]):
        out["labels"] = np.array(rows["labels"], dtype=str)
    return out


def plot(result: dict[str, np.ndarray], path: str, method: str, title: str) -> str:
    """Scatter of the 2D map coloured by label; returns the method actually used."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, used = projection.project_2d(result["features"], method)
    known = "labels" in result
    groups = result["labels"] if known else result["predicted_labels"]
    names = sorted(set(groups.tolist()))
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(9, 6), dpi=100)
    for i, name in enumerate(names):
        chosen = groups == name
        ax.scatter(
            points[chosen, 0],
            points[chosen, 1],
            s=22,
            color=colours(i % colours.N),
            label=name or "(no label)",
        )
    if len(names) <= 40:
        # Beside the map, never over a cluster.
        ax.legend(
            title="label" if known else "predicted class",
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            markerscale=1.2,
            frameon=False,
        )
    ax.set_title(f"{title} ({used})", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return used


def main(argv=None) -> int:
    args = parse_args(argv)
    inference.setup_process()
    try:
        videos = inference.list_videos(args.video)
        run = inference.load_run(
            args.workdir, step=args.step, num_clips=args.num_clips, num_crops=args.num_crops
        )
        valid = run.endpoint_names()
        if args.endpoint not in valid:
            raise UserError(
                f"--endpoint={args.endpoint} is not an endpoint of "
                f"{run.config.model.name}; use one of {', '.join(valid)}."
            )
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(
        f"{run.describe()}; endpoint {args.endpoint}; {len(videos)} video(s)",
        file=sys.stderr,
        flush=True,
    )
    result = extract(
        run, videos, args.endpoint, progress=lambda line: print(line, file=sys.stderr, flush=True)
    )
    count = len(result["videos"])
    if not count:
        print(
            f"Error: none of the {len(videos)} video(s) could be read; nothing written.",
            file=sys.stderr,
        )
        return 1
    np.savez(args.out, **result)
    print(
        f"wrote {args.out}: {count} video(s) x {result['features'].shape[1]} features"
        + (f", {len(result['failed'])} unreadable" if len(result["failed"]) else "")
    )
    if args.plot:
        if count < 2:
            print(f"not plotting: one video is not a map (--plot needs at least 2).")
        else:
            used = plot(
                result,
                args.plot,
                args.projection,
                f"{run.config.model.name} {args.endpoint}, step {run.step}, {count} videos",
            )
            print(f"wrote {args.plot} ({used})")
    return 0


def cli() -> None:
    """The console script (pyproject.toml)."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
