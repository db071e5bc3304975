r"""The speed-accuracy table and plots from finished runs (each workdir's result.json).

  python -m experiments.speed_accuracy --workdirs='runs/synthetic/*' --out=out/synthetic
  python -m experiments.speed_accuracy --workdirs=runs/a,runs/b,gs://BUCKET/runs/k400/* --out=out/k400
  python -m experiments.speed_accuracy --workdirs='runs/k400/*' --two_stream=runs/rgb:runs/flow \
      [--fusion=softmax] --out=out/k400

Writes to --out:
  speed_accuracy.md / .csv  one row per run: model, stream (RGB, Flow, RGB+Flow), input, G
                            multiply-adds at the run's input size and of the full-width network
                            at the paper's 64x224x224 (both video_s3d.cost; a Flow row adds the
                            cost of computing its TV-L1 flow, below), parameters, training and
                            inference clips/s
                            and the training step time as measured on the run's devices
                            (rank models on one machine only), clip and video top-1/top-5,
                            time-reversed video top-1 and, for datasets with time-reversal
                            partner classes, the pairwise reversal accuracy.
  speed_accuracy.png        video top-1 against full-size G multiply-adds (the paper's speed
                            axis: FLOPs at 64x224x224, not the tiny models' measured time),
                            one panel per dataset, the Pareto front (no run is both cheaper
                            and more accurate) marked.
  cut_points.png            for bottom-/top-heavy sweeps: video top-1 against the cut point
                            and against cost, one line per direction (only if such runs exist).

A workdir without result.json (unfinished) is listed and skipped.

Streams. A flow run (config.data.modality = "flow") is a Flow row: its cost is the flow network
(2 input channels) plus computing its input, the TV-L1 flow of one frame pair per flow field
(video_s3d.flow.cost: XLA's flop count / 2, worst case, i.e. every TV-L1 loop at its iteration
bound; a pair that converges early costs less), at the clip's crop size (our choice: the pixels
the network sees; the I3D protocol computes flow on the whole 256-short-side frame, 1.74x the
pixels of a 224 crop for a 256x341 frame), with its dataset's TV-L1 setting at the run's size
and OpenCV's defaults (the I3D protocol's) at full size. `--two_stream=RGB_RUN:FLOW_RUN` adds
an RGB+Flow row per pair: both networks plus the flow, its accuracy the two runs' fusion
evaluated by video_s3d.two_stream at the steps their result.json report (`--fusion`, default
logits); the pair's runs get their own rows too. The flow part of each cost is its own column.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import glob
import json
import math
import os
import re
import sys
from typing import Callable, Iterable, Sequence

from experiments import runs as runs_lib

TABLE_NAME = "speed_accuracy"
# The paper's cost axis: FLOPs of the full network on 64 frames of 224x224 (Xie et al. 2018,
# Table 1 / Fig. 4 caption); tiny study models are costed as their full-width namesakes.
FULL_SIZE = (64, 224)
FULL_SIZE_CLASSES = 400
CUT_PLOT_NAME = "cut_points.png"
RGB, FLOW, RGB_FLOW = STREAMS = ("RGB", "Flow", "RGB+Flow")


# --------------------------------------------------------------------------- reading runs
@dataclasses.dataclass
class RunRow:
    """One finished run, as the table shows it. Accuracies are fractions in [0, 1]."""

    run: str
    workdir: str
    model: str
    dataset: str
    num_classes: int
    num_frames: int
    crop_size: int
    step: int | None  # None for an RGB+Flow row (each stream has its own)
    params: int
    stream: str = "RGB"  # RGB, Flow or RGB+Flow (STREAMS)
    gmacs: float | None = None  # at the run's input size, flow computation included
    full_gmacs: float | None = None  # full-width network(s) at FULL_SIZE (the paper's axis)
    flow_gmacs: float | None = None  # of gmacs, computing the flow (worst case)
    full_flow_gmacs: float | None = None  # of full_gmacs, computing the flow
    batch_size: int | None = None  # global training batch, from the workdir's config.json
    seed: int | None = None
    train_clips_per_sec: float | None = None
    eval_clips_per_sec: float | None = None
    device: str | None = None
    clip_top1: float | None = None
    clip_top5: float | None = None
    video_top1: float | None = None
    video_top5: float | None = None
    reversed_video_top1: float | None = None
    pairwise_reversal: float | None = None
    num_videos: int | None = None
    dataset_version: str | None = None


def _is_gcs(path: str) -> bool:
    return path.startswith("gs://")


def _glob(pattern: str) -> list[str]:
    if _is_gcs(pattern):
        import tensorflow as tf  # only remote paths need it

        return sorted(tf.io.gfile.glob(pattern))
    return sorted(glob.glob(os.path.expanduser(pattern)))


def _read_text(path: str) -> str | None:
    if _is_gcs(path):
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as f:
            return f.read()
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return f.read()


def find_workdirs(specs: Iterable[str]) -> list[str]:
    """Comma-separated workdirs and glob patterns, in order, without repeats."""
    found = []
    for spec in specs:
        for item in filter(None, (s.strip() for s in spec.split(","))):
            matches = _glob(item) if any(c in item for c in "*?[") else [item]
            found += [m.rstrip("/") for m in matches if m.rstrip("/") not in found]
    return found


def read_run(workdir: str) -> RunRow | None:
    """The run's row from its result.json (see video_s3d/evaluate.py), None if unfinished."""
    text = _read_text(f"{workdir}/{runs_lib.RESULT_FILE}")
    if text is None:
        return None
    result = json.loads(text)
    metrics = result.get("metrics", {})
    config = json.loads(_read_text(f"{workdir}/config.json") or "{}")
    flow = (config.get("data", {}).get("modality") or "rgb") == "flow"
    return RunRow(
        run=os.path.basename(workdir),
        workdir=workdir,
        model=result["model"],
        dataset=result["dataset"],
        num_classes=int(result["num_classes"]),
        num_frames=int(result["num_frames"]),
        crop_size=int(result["crop_size"]),
        step=int(result["step"]),
        params=int(result["num_params"]),
        stream=FLOW if flow else RGB,
        train_clips_per_sec=result.get("train_clips_per_sec"),
        eval_clips_per_sec=result.get("eval_clips_per_sec"),
        device=result.get("device"),
        clip_top1=metrics.get("clip_top1"),
        clip_top5=metrics.get("clip_top5"),
        video_top1=metrics.get("video_top1"),
        video_top5=metrics.get("video_top5"),
        reversed_video_top1=metrics.get("reversed_video_top1"),
        pairwise_reversal=metrics.get("pairwise_reversal_accuracy"),
        num_videos=int(metrics["num_videos"]) if "num_videos" in metrics else None,
        dataset_version=result.get("dataset_version"),
        batch_size=config.get("batch_size"),
        seed=config.get("seed"),
    )


@functools.lru_cache(maxsize=None)
def model_gmacs(
    model: str, num_frames: int, crop_size: int, num_classes: int, in_channels: int = 3
) -> float:
    """G multiply-adds of one clip at this input size (video_s3d.cost; traced, not run, and
    remembered: several tables over the same runs count each network once)."""
    from video_s3d import cost

    return cost.measure(
        model, frames=num_frames, size=crop_size, num_classes=num_classes, in_channels=in_channels
    ).gmacs


def full_size_gmacs(model: str, in_channels: int = 3) -> float | None:
    """G multiply-adds of the full-width network at FULL_SIZE (tiny_ prefix dropped), counted
    from the spec (video_s3d.cost.gmacs: instant, equal to the traced count); None for a model
    outside the zoo."""
    from video_s3d import cost
    from video_s3d.models import zoo

    base = model[len(zoo.TINY_PREFIX) :] if model.startswith(zoo.TINY_PREFIX) else model
    try:
        return cost.gmacs(base, *FULL_SIZE, num_classes=FULL_SIZE_CLASSES, in_channels=in_channels)
    except ValueError:
        return None


def flow_gmacs(num_frames: int, size: int, tvl1_params: dict | None = None) -> float:
    """Worst-case G multiply-adds of computing one clip's flow input (video_s3d.flow.cost):
    `num_frames` TV-L1 frame pairs at size x size; `tvl1_params`, TVL1Params fields (None:
    OpenCV's defaults). Remembered per size and setting."""
    from video_s3d.flow import TVL1Params
    from video_s3d.flow import cost as flow_cost

    return flow_cost.clip_gmacs(num_frames, size, TVL1Params(**(tvl1_params or {})))


def dataset_tvl1_params(workdir: str) -> dict | None:
    """The TV-L1 setting the flow run's dataset was built with (its builder config), None for
    OpenCV's defaults or a dataset not readable here."""
    from video_s3d import inference

    if _is_gcs(workdir):
        return None
    try:
        data = inference.load_config(workdir).data
    except Exception:  # noqa: BLE001 - no readable config: the defaults
        return None
    return inference.video_format_of(data).flow_params


def add_costs(row: RunRow, gmacs_fn: Callable[..., float] = model_gmacs) -> None:
    """Fills the row's costs: the network's, plus computing the flow for a Flow row."""
    in_channels = 2 if row.stream == FLOW else 3
    row.gmacs = gmacs_fn(
        row.model,
        num_frames=row.num_frames,
        crop_size=row.crop_size,
        num_classes=row.num_classes,
        in_channels=in_channels,
    )
    row.full_gmacs = full_size_gmacs(row.model, in_channels)
    if row.stream == FLOW:
        row.flow_gmacs = flow_gmacs(row.num_frames, row.crop_size, dataset_tvl1_params(row.workdir))
        row.full_flow_gmacs = flow_gmacs(FULL_SIZE[0], FULL_SIZE[1])
        row.gmacs += row.flow_gmacs
        if row.full_gmacs is not None:
            row.full_gmacs += row.full_flow_gmacs


def cost_axis(row: RunRow) -> float | None:
    """The cost every plot and comparison uses: full-size G multiply-adds, else the run's."""
    return row.full_gmacs if row.full_gmacs is not None else row.gmacs


def train_step_ms(row: RunRow) -> float | None:
    """Measured milliseconds per training step (global batch / clips per second)."""
    if not row.train_clips_per_sec or not row.batch_size:
        return None
    return 1000.0 * row.batch_size / row.train_clips_per_sec


def load_rows(
    workdirs: Sequence[str],
    gmacs_fn: Callable[..., float] = model_gmacs,
    log: Callable[[str], None] = print,
) -> list[RunRow]:
    """Rows of the finished runs, each with its cost (flow computation included)."""
    rows = []
    for i, workdir in enumerate(workdirs, 1):
        row = read_run(workdir)
        if row is None:
            log(
                f"[{i}/{len(workdirs)}] {workdir}: no {runs_lib.RESULT_FILE} (unfinished?), skipped"
            )
            continue
        log(
            f"[{i}/{len(workdirs)}] {row.run}: {row.model} ({row.stream}) at "
            f"{row.num_frames}x{row.crop_size}x{row.crop_size}"
        )
        add_costs(row, gmacs_fn)
        rows.append(row)
    sort_rows(rows)
    return rows


def sort_rows(rows: list[RunRow]) -> None:
    """By dataset (a flow twin beside its RGB dataset), then cost."""
    rows.sort(
        key=lambda r: (panel(r), r.gmacs if r.gmacs is not None else math.inf, r.stream, r.run)
    )


def panel(row: RunRow) -> str:
    """The RGB dataset a row belongs to: a flow twin's name less its flow suffix
    (experiments/recipes.py names them `<name>_flow` or `<name>/flow`)."""
    for suffix in ("/flow", "_flow"):
        if row.dataset.endswith(suffix):
            return row.dataset[: -len(suffix)]
    return row.dataset


# --------------------------------------------------------------------------- two streams
def parse_pairs(specs: Iterable[str]) -> list[tuple[str, str]]:
    """`RGB_RUN:FLOW_RUN` pairs, comma-separated or repeated (a `gs://` colon is part of its
    path); a UserError for anything else."""
    from video_s3d.errors import UserError

    pairs = []
    for spec in specs:
        for item in filter(None, (s.strip() for s in spec.split(","))):
            parts = [p.rstrip("/") for p in re.split(r":(?!//)", item)]
            if len(parts) != 2 or not all(parts):
                raise UserError(
                    f"--two_stream={item!r} is not one RGB_RUN:FLOW_RUN pair of workdirs, e.g. "
                    "--two_stream=runs/rgb:runs/flow."
                )
            pairs.append((parts[0], parts[1]))
    return pairs


def fused_metrics(rgb: RunRow, flow: RunRow, fusion: str = "logits") -> dict:
    """The fused video top-1 / top-5 of two runs (video_s3d.two_stream: both evaluated at the
    steps their result.json report, over the same videos)."""
    from video_s3d import two_stream

    result, shown = two_stream.evaluate_two_stream(
        rgb.workdir, flow.workdir, step=str(rgb.step), flow_step=str(flow.step), fusion=fusion
    )
    print(shown)
    return {"num_videos": result["num_videos"], **result["metrics"]["rgb+flow"]}


def two_stream_row(rgb: RunRow, flow: RunRow, metrics: dict) -> RunRow:
    """The RGB+Flow row: both networks and the flow computation; the fused accuracy."""

    def total(a, b):
        return None if a is None or b is None else a + b

    return RunRow(
        run=f"{rgb.run}+{flow.run}",
        workdir=f"{rgb.workdir}:{flow.workdir}",
        model=rgb.model if rgb.model == flow.model else f"{rgb.model}+{flow.model}",
        dataset=rgb.dataset,
        num_classes=rgb.num_classes,
        num_frames=rgb.num_frames,
        crop_size=rgb.crop_size,
        step=None,
        params=rgb.params + flow.params,
        stream=RGB_FLOW,
        gmacs=total(rgb.gmacs, flow.gmacs),
        full_gmacs=total(rgb.full_gmacs, flow.full_gmacs),
        flow_gmacs=flow.flow_gmacs,
        full_flow_gmacs=flow.full_flow_gmacs,
        device=rgb.device if rgb.device == flow.device else None,
        video_top1=metrics["video_top1"],
        video_top5=metrics["video_top5"],
        num_videos=metrics.get("num_videos"),
        dataset_version=rgb.dataset_version,
    )


def two_stream_rows(
    pairs: Sequence[tuple[str, str]],
    rows: Sequence[RunRow],
    fusion: str = "logits",
    fuse_fn: Callable[..., dict] = fused_metrics,
    log: Callable[[str], None] = print,
) -> list[RunRow]:
    """One RGB+Flow row per pair, from the pair's rows; every pair is checked (finished, an RGB
    and a Flow run, same classes and clip) before any is evaluated."""
    from video_s3d.errors import UserError

    by_workdir = {r.workdir: r for r in rows}
    checked = []
    for rgb_dir, flow_dir in pairs:
        for workdir in (rgb_dir, flow_dir):
            if workdir not in by_workdir:
                raise UserError(
                    f"--two_stream run {workdir} has no {runs_lib.RESULT_FILE}; train it to the "
                    "end first."
                )
        rgb, flow = by_workdir[rgb_dir], by_workdir[flow_dir]
        if rgb.stream != RGB or flow.stream != FLOW:
            raise UserError(
                f"--two_stream={rgb_dir}:{flow_dir}: the first is a {rgb.stream} run and the "
                f"second a {flow.stream} run; give RGB_RUN:FLOW_RUN."
            )
        if panel(rgb) != panel(flow) or rgb.num_classes != flow.num_classes:
            raise UserError(
                f"--two_stream={rgb_dir}:{flow_dir}: the runs were trained on {rgb.dataset} and "
                f"{flow.dataset}; fuse an RGB and a flow run of the same dataset."
            )
        checked.append((rgb, flow))
    fused = []
    for i, (rgb, flow) in enumerate(checked, 1):
        log(f"[two-stream {i}/{len(checked)}] fusing {rgb.run} and {flow.run} ({fusion})")
        fused.append(two_stream_row(rgb, flow, fuse_fn(rgb, flow, fusion)))
    return fused


# --------------------------------------------------------------------------- table
COLUMNS = (  # (header, attribute, format)
    ("run", "run", "{}"),
    ("model", "model", "{}"),
    ("stream", "stream", "{}"),
    ("dataset", "dataset", "{}"),
    ("input TxS²", None, None),
    ("GMACs", "gmacs", "{:.4g}"),
    ("full-size GMACs", "full_gmacs", "{:.1f}"),
    ("of which flow", "flow_gmacs", "{:.4g}"),
    ("full-size flow", "full_flow_gmacs", "{:.1f}"),
    ("params (M)", "params", None),
    ("train clips/s", "train_clips_per_sec", "{:.1f}"),
    ("train ms/step", "step_ms", "{:.0f}"),
    ("eval clips/s", "eval_clips_per_sec", "{:.1f}"),
    ("device", "device", "{}"),
    ("clip top-1", "clip_top1", "pct"),
    ("clip top-5", "clip_top5", "pct"),
    ("video top-1", "video_top1", "pct"),
    ("video top-5", "video_top5", "pct"),
    ("reversed top-1", "reversed_video_top1", "pct"),
    ("pair reversal", "pairwise_reversal", "pct"),
)


def _cell(row: RunRow, attribute: str | None, fmt: str | None) -> str:
    if attribute is None:
        return f"{row.num_frames}x{row.crop_size}²"
    value = train_step_ms(row) if attribute == "step_ms" else getattr(row, attribute)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if attribute == "params":
        return f"{value / 1e6:.3f}"
    if fmt == "pct":
        return f"{100 * value:.1f}"
    return fmt.format(value)


def markdown_table(rows: Sequence[RunRow]) -> str:
    header = [c[0] for c in COLUMNS]
    lines = [
        "| " + " | ".join(header) + " |",
        "|"
        + "|".join("---" if c[2] in ("{}", None) and c[1] != "params" else "---:" for c in COLUMNS)
        + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, c[1], c[2]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[RunRow], path: str) -> None:
    """Raw numbers (accuracies as fractions), one column per RunRow field."""
    fields = [f.name for f in dataclasses.fields(RunRow)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: ("" if v is None else v) for k, v in dataclasses.asdict(row).items()}
            )


# --------------------------------------------------------------------------- analysis
def accuracy(row: RunRow) -> float | None:
    """The accuracy every plot uses: video-level top-1, else clip-level."""
    return row.video_top1 if row.video_top1 is not None else row.clip_top1


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) points that no other point beats on both, by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


@dataclasses.dataclass(frozen=True, order=True)
class CutPoint:
    family: str  # 'i3d' or 's3d'
    direction: str  # 'bottom' or 'top'
    cut: int  # layers below the cut (video_s3d.models.zoo)


def cut_points(model: str) -> list[CutPoint]:
    """Every place of `model` in the bottom-/top-heavy sweeps, found by comparing specs, so
    i2d and i3d / s3d land at both ends of the curves they terminate."""
    from video_s3d.models import zoo

    base = model[len(zoo.TINY_PREFIX) :] if model.startswith(zoo.TINY_PREFIX) else model
    try:
        spec = zoo.get_spec(base)
    except ValueError:
        return []
    return [
        CutPoint(family, direction, k)
        for family in ("i3d", "s3d")
        for direction in ("bottom", "top")
        for k in zoo.SWEEP_CUTS
        if zoo.get_spec(f"{direction}_heavy_{family}_{k}") == spec
    ]


def heavy_sweeps(rows: Sequence[RunRow]) -> dict[tuple[str, str], dict[CutPoint, list[RunRow]]]:
    """(dataset, family) -> cut point -> runs, for the families that have an actual
    bottom- or top-heavy run (an i3d run alone is not a sweep)."""
    from video_s3d.models import zoo

    rows = [r for r in rows if r.stream == RGB]  # the sweeps are of RGB networks
    swept = {
        (r.dataset, p.family)
        for r in rows
        for p in cut_points(r.model)
        if p.cut not in (0, zoo.SWEEP_CUTS[-1])
    }
    sweeps: dict = {}
    for row in rows:
        for point in cut_points(row.model):
            if (row.dataset, point.family) in swept and accuracy(row) is not None:
                sweeps.setdefault((row.dataset, point.family), {}).setdefault(point, []).append(row)
    return sweeps


# --------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclasses.dataclass
class ModelPoint:
    """One model's runs of one panel (its seeds), as the speed-accuracy plot draws them."""

    label: str
    cost: float
    accuracies: list[float]  # percent, one per run

    @property
    def mean(self) -> float:
        return sum(self.accuracies) / len(self.accuracies)


def model_points(rows: Sequence[RunRow]) -> list[ModelPoint]:
    """The runs of one panel grouped by model and stream (a study's seeds become one point at
    their mean), in first-seen order; runs without a cost or an accuracy are left out."""
    points: dict[tuple[str, str], ModelPoint] = {}
    for r in rows:
        if not cost_axis(r) or accuracy(r) is None:
            continue
        label = r.model if r.stream == RGB else f"{r.model} ({r.stream})"
        point = points.setdefault((r.model, r.stream), ModelPoint(label, cost_axis(r), []))
        point.accuracies.append(100 * accuracy(r))
    return list(points.values())


def plot_speed_accuracy(rows: Sequence[RunRow], path: str) -> None:
    """Video top-1 against full-size cost, one panel per dataset. A model with several runs
    (seeds) is one point at their mean, with a bar from the lowest to the highest run and
    each run faintly; the Pareto front is over the means."""
    plt = _pyplot()
    datasets = sorted({panel(r) for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 5), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        chosen = model_points([r for r in rows if panel(r) == dataset])
        points = [(p.cost, p.mean) for p in chosen]
        several = any(len(p.accuracies) > 1 for p in chosen)  # seeds: points are means
        front = set(pareto_front(points))
        for i, p in enumerate(chosen):
            on_front = i in front
            colour = "tab:red" if on_front else "tab:blue"
            if len(p.accuracies) > 1:
                ax.scatter(
                    [p.cost] * len(p.accuracies),
                    p.accuracies,
                    s=10,
                    alpha=0.35,
                    color=colour,
                    zorder=2,
                )
                ax.vlines(
                    p.cost, min(p.accuracies), max(p.accuracies), color=colour, alpha=0.6, zorder=2
                )
            ax.scatter(
                [p.cost],
                [p.mean],
                s=60 if on_front else 30,
                zorder=3,
                color=colour,
                edgecolors="black" if on_front else "none",
            )
        if front:
            line = sorted(points[i] for i in front)
            ax.step(
                [p[0] for p in line],
                [p[1] for p in line],
                where="post",
                color="tab:red",
                alpha=0.6,
                label="Pareto front" + (" (of the means)" if several else ""),
            )
            ax.legend(loc="best", fontsize=8)
        ax.set_xscale("log")
        ax.margins(x=0.2, y=0.08)  # room for the labels of the outermost points
        labels = [
            p.label + (f" ({len(p.accuracies)} runs)" if len(p.accuracies) > 1 else "")
            for p in chosen
        ]
        _annotate_without_overlap(ax, points, labels, fontsize=7)
        ax.set_xlabel(
            f"G multiply-adds per {FULL_SIZE[0]}x{FULL_SIZE[1]}² clip, full-width network (log)"
        )
        ax.set_ylabel(
            "video top-1 (%)" + (", mean (bar: lowest to highest run)" if several else "")
        )
        ax.set_title(dataset)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _annotate_without_overlap(ax, points, labels, fontsize: float) -> None:
    """Labels to the upper right of their points, each moved up or down by whole lines until
    it overlaps no earlier label (runs of equal cost and accuracy otherwise print on top of
    each other). Label boxes are estimated from the character count, in display pixels."""
    ax.autoscale_view()
    to_pixels = ax.transData.transform
    scale = ax.figure.dpi / 72.0  # points -> pixels
    height = 1.25 * fontsize * scale
    placed: list[tuple[float, float, float, float]] = []
    order = sorted(range(len(points)), key=lambda i: (-points[i][1], points[i][0]))
    for i in order:
        px, py = to_pixels(points[i])
        width = 0.6 * fontsize * scale * len(labels[i])
        left = px + 4 * scale
        for shift in (0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5):
            bottom = py + 4 * scale + shift * height
            box = (left, bottom, left + width, bottom + height)
            if not any(
                box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed
            ):
                break
        placed.append(box)
        ax.annotate(
            labels[i],
            points[i],
            textcoords="offset points",
            fontsize=fontsize,
            xytext=(4, (box[1] - py) / scale),
        )


def plot_cut_points(rows: Sequence[RunRow], path: str) -> bool:
    """Accuracy against cut point and against cost; False (no file) without a heavy sweep."""
    sweeps = heavy_sweeps(rows)
    if not sweeps:
        return False
    plt = _pyplot()
    keys = sorted(sweeps)
    fig, axes = plt.subplots(len(keys), 2, figsize=(12, 4.5 * len(keys)), squeeze=False)
    colours = {"bottom": "tab:orange", "top": "tab:green"}
    for (ax_cut, ax_cost), key in zip(axes, keys):
        dataset, family = key
        for direction in ("bottom", "top"):
            points = sorted(
                (p, runs) for p, runs in sweeps[key].items() if p.direction == direction
            )
            if not points:
                continue
            label = f"{direction}-heavy {family.upper()}"
            cuts = [p.cut for p, _ in points]
            mean_acc = [100 * sum(accuracy(r) for r in runs) / len(runs) for _, runs in points]
            costs = [sum(cost_axis(r) for r in runs) / len(runs) for _, runs in points]
            ax_cut.plot(cuts, mean_acc, "o-", color=colours[direction], label=label)
            ax_cost.plot(costs, mean_acc, "o-", color=colours[direction], label=label)
            for p, runs in points:  # every seed, faintly
                ax_cut.scatter(
                    [p.cut] * len(runs),
                    [100 * accuracy(r) for r in runs],
                    color=colours[direction],
                    alpha=0.3,
                    s=12,
                )
        ax_cut.set_xlabel("cut point k (layers below the cut: bottom-heavy 3D, top-heavy 2D)")
        ax_cost.set_xlabel(f"full-size G multiply-adds per {FULL_SIZE[0]}x{FULL_SIZE[1]}² clip")
        for ax in (ax_cut, ax_cost):
            ax.set_ylabel("video top-1 (%)")
            ax.set_title(f"{dataset}: {family.upper()} family")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def mixed_versions(rows: Sequence[RunRow]) -> list[str]:
    """One sentence per dataset whose runs were trained on different versions of it.

    A finished run is never trained again, so after a dataset changes (synthetic_motion 1.4.0
    replaced a class pair) a re-started sweep would quietly compare old runs with new ones.
    Runs from before versions were recorded count as 'unrecorded'.
    """
    by_dataset: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        versions = by_dataset.setdefault(row.dataset, {})
        versions.setdefault(row.dataset_version or "unrecorded", []).append(row.run)
    warnings = []
    for dataset, versions in sorted(by_dataset.items()):
        if len(versions) > 1:
            listed = "; ".join(
                f"{version}: {', '.join(sorted(runs))}"
                for version, runs in sorted(versions.items())
            )
            warnings.append(
                f"the runs on {dataset} were trained on different versions of it "
                f"({listed}); move the older runs' workdirs aside and run the sweep "
                f"again before comparing them."
            )
    return warnings


# --------------------------------------------------------------------------- entry point
def write_report(
    workdir_specs: Sequence[str],
    out_dir: str,
    gmacs_fn: Callable[..., float] = model_gmacs,
    log: Callable[[str], None] = print,
    two_stream: Sequence[tuple[str, str]] = (),
    fusion: str = "logits",
    fuse_fn: Callable[..., dict] = fused_metrics,
) -> list[RunRow]:
    """Reads the runs (and the runs of the `two_stream` (RGB, flow) workdir pairs), adds an
    RGB+Flow row per pair, writes table and plots into out_dir; returns the rows."""
    workdirs = find_workdirs(workdir_specs)
    paired = [w.rstrip("/") for pair in two_stream for w in pair]
    workdirs += [w for w in dict.fromkeys(paired) if w not in workdirs]
    if not workdirs:
        raise FileNotFoundError(
            f"No workdir matches {', '.join(workdir_specs)}; pass finished "
            "runs' folders, e.g. --workdirs='runs/synthetic/*'."
        )
    rows = load_rows(workdirs, gmacs_fn=gmacs_fn, log=log)
    if not rows:
        raise FileNotFoundError(
            f"None of the {len(workdirs)} workdirs holds a {runs_lib.RESULT_FILE}; "
            "train them to the end first (or check --workdirs)."
        )
    if two_stream:
        rows += two_stream_rows(two_stream, rows, fusion, fuse_fn, log)
        sort_rows(rows)
    os.makedirs(out_dir, exist_ok=True)
    table = markdown_table(rows)
    warnings = mixed_versions(rows)
    with open(os.path.join(out_dir, TABLE_NAME + ".md"), "w", encoding="utf-8") as f:
        f.write(
            f"# Speed and accuracy ({len(rows)} runs)\n\n"
            + "".join(f"**Warning:** {w}\n\n" for w in warnings)
            + table
        )
    write_csv(rows, os.path.join(out_dir, TABLE_NAME + ".csv"))
    plot_speed_accuracy(rows, os.path.join(out_dir, TABLE_NAME + ".png"))
    written = [TABLE_NAME + ext for ext in (".md", ".csv", ".png")]
    if plot_cut_points(rows, os.path.join(out_dir, CUT_PLOT_NAME)):
        written.append(CUT_PLOT_NAME)
    log(table)
    for warning in warnings:
        log(f"WARNING: {warning}")
    log(f"wrote {', '.join(os.path.join(out_dir, w) for w in written)}")
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.speed_accuracy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workdirs",
        action="append",
        default=[],
        help="comma-separated workdirs or glob patterns (quote them); repeatable",
    )
    parser.add_argument(
        "--two_stream",
        action="append",
        default=[],
        help="RGB_RUN:FLOW_RUN workdir pairs, comma-separated; repeatable: an RGB+Flow row each "
        "(the runs are read too)",
    )
    parser.add_argument(
        "--fusion",
        default="logits",
        choices=("logits", "softmax"),
        help="two-stream fusion: logits (mean of the streams' logits) or softmax (of scores)",
    )
    parser.add_argument("--out", required=True, help="folder for the table and the plots")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    from video_s3d.errors import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        pairs = parse_pairs(args.two_stream)
    except UserError as error:
        parser.error(str(error))
    if not args.workdirs and not pairs:
        parser.error("give the runs to tabulate: --workdirs, --two_stream or both.")
    write_report(args.workdirs, args.out, two_stream=pairs, fusion=args.fusion)


if __name__ == "__main__":
    main(sys.argv[1:])
