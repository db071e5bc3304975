"""experiments/speed_accuracy.py and experiments/paper_study.py on fixture workdirs.

The fixtures are the paper study's own runs (names, models, tasks), each given a result.json
written by the trainer's writer (video_s3d.evaluate.write_result) with chosen accuracies, so
the table, the plots and the findings run exactly as after real training, costs included
(video_s3d.cost, traced for the tiny models at 8x32x32)."""

import csv
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
from ml_collections.config_flags import config_path
from models_testing import lively

from experiments import paper_study, speed_accuracy, synthetic_motion, temporal_reach
from video_s3d import evaluate
from video_s3d.data.dataset_info import DatasetInfo
from video_s3d.errors import UserError

NUM_VIDEOS = 1000  # synthetic_motion 1.5.0's validation split
BATCH = 16
# (video top-1, reversed video top-1, pairwise reversal accuracy) per model and task: a run
# set where every paper finding holds, with top-heavy clearly ahead of bottom-heavy.
APPEARANCE = {
    "i2d": (0.85, 0.85, None),
    "i3d": (0.72, 0.71, None),
    "s3d": (0.82, 0.82, None),
    "s3dg": (0.93, 0.92, None),
    "bottom_heavy_i3d_3": (0.65, 0.65, None),
    "bottom_heavy_i3d_6": (0.68, 0.67, None),
    "top_heavy_i3d_3": (0.84, 0.84, None),
    "top_heavy_i3d_6": (0.83, 0.82, None),
}
ORDER = {
    "i2d": (0.45, 0.45, 0.50),
    "i3d": (0.70, 0.10, 0.85),
    "s3d": (0.80, 0.08, 0.88),
    "s3dg": (0.90, 0.05, 0.93),
    "bottom_heavy_i3d_3": (0.50, 0.30, 0.60),
    "bottom_heavy_i3d_6": (0.55, 0.25, 0.65),
    "top_heavy_i3d_3": (0.78, 0.08, 0.88),
    "top_heavy_i3d_6": (0.75, 0.10, 0.86),
}
# flash_order: the same ranking, every model lower.
FLASH_ORDER = {m: (top1 - 0.1, rev, pair) for m, (top1, rev, pair) in ORDER.items()}
# far_flash_order (only the runs the study makes there): bottom-heavy cut 3 as blind to the
# order as I2D, top-heavy cut 3 and I3D not.
FAR_FLASH_ORDER = {
    "i2d": (0.46, 0.46, 0.50),
    "i3d": (0.85, 0.08, 0.90),
    "bottom_heavy_i3d_3": (0.47, 0.46, 0.51),
    "top_heavy_i3d_3": (0.86, 0.07, 0.91),
}
SCORES = {
    "appearance": APPEARANCE,
    "order": ORDER,
    "flash_order": FLASH_ORDER,
    "far_flash_order": FAR_FLASH_ORDER,
}
# Each seed moves every model's accuracy alike (as a shared data order would): pairing by seed
# removes it.
SEED_SHIFT = {0: -0.02, 1: 0.0, 2: 0.02}


def write_result(
    workdir: str,
    model: str,
    task: str,
    top1: float,
    reversed_top1: float,
    pairwise: float | None,
    seed: int = 0,
    overrides: dict | None = None,
) -> None:
    """A finished run's config.json and result.json; `overrides` (a sweep run's, as the real
    run would record them) go on top of the fixture's 8x32² clips and batch."""
    config = synthetic_motion.get_config(f"model={model},config={task}")
    config.data.num_frames, config.data.crop_size = 8, 32
    config.seed, config.batch_size = seed, BATCH
    for key, value in (overrides or {}).items():
        config_path.set_value(key, config, value)
    info = DatasetInfo(
        name="in_memory",
        num_classes=10,
        class_names=[f"c{i}" for i in range(10)],
        split_sizes={},
        reversal_partner=None,
    )
    metrics = {
        "clip_top1": top1 - 0.02,
        "clip_top5": min(top1 + 0.1, 1.0),
        "video_top1": top1,
        "video_top5": min(top1 + 0.08, 1.0),
        "reversed_video_top1": reversed_top1,
        "reversed_clip_top1": reversed_top1,
        "num_videos": NUM_VIDEOS,
        "num_clips": NUM_VIDEOS,
        "eval_clips_per_sec": 250.0,
    }
    if pairwise is not None:
        metrics["pairwise_reversal_accuracy"] = pairwise
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json())
    evaluate.write_result(
        workdir,
        config=config,
        info=info,
        step=300,
        metrics=metrics,
        extras={"per_class_accuracy": np.full(10, top1)},
        num_params=123_456,
        train_clips_per_sec=40.0,
    )


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """The paper study's workdirs (3 seeds), every run finished with the fixture accuracies."""
    root = tmp_path_factory.mktemp("study")
    for run in paper_study.get_sweep():
        model = dict(a.split("=", 1) for a in run.args)["model"]
        task = dict(a.split("=", 1) for a in run.args)["config"]
        top1, reversed_top1, pairwise = SCORES[task][model.removeprefix("tiny_")]
        shift = SEED_SHIFT[run.seed]
        write_result(
            run.workdir(str(root)),
            model,
            task,
            top1 + shift,
            reversed_top1 + shift,
            pairwise,
            seed=run.seed,
            overrides=run.overrides,
        )
    return root


@pytest.fixture(scope="module")
def report(study_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    (study_dir / "unfinished").mkdir()
    lines = []
    rows = speed_accuracy.write_report([f"{study_dir}/*"], str(out), log=lines.append)
    return rows, out, lines


def test_table_has_one_row_per_finished_run(report):
    rows, out, lines = report
    # (base models x tasks + heavy on the two ordered tasks) x seeds
    assert len(rows) == (4 * 3 + 4 * 2) * 3
    assert any("unfinished: no result.json" in line for line in lines)
    table = (out / "speed_accuracy.md").read_text().splitlines()
    body = [line for line in table if line.startswith("| ") and "---" not in line][1:]
    assert len(body) == len(rows)
    s3dg_order = next(line for line in body if line.startswith("| tiny_s3dg-order-s1 "))
    cells = [c.strip() for c in s3dg_order.strip("|").split("|")]
    assert cells[1:5] == ["tiny_s3dg", "RGB", "synthetic_motion/order", "13x48²"]
    assert cells[6] == "64.2"  # full-width S3D-G at 64x224² (README)
    assert cells[7:9] == ["—", "—"]  # an RGB run computes no flow
    assert cells[10:13] == ["40.0", "400", "250.0"]  # train clips/s, ms/step (16 / 40), eval
    assert cells[16] == "90.0" and cells[18] == "5.0" and cells[19] == "93.0"


def test_csv_holds_the_raw_numbers(report):
    rows, out, _ = report
    with open(out / "speed_accuracy.csv") as f:
        records = list(csv.DictReader(f))
    assert [r["run"] for r in records] == [r.run for r in rows]
    i2d = next(r for r in records if r["run"] == "tiny_i2d-order-s0")
    assert (
        float(i2d["video_top1"]) == pytest.approx(0.43) and float(i2d["pairwise_reversal"]) == 0.5
    )
    assert int(i2d["params"]) == 123_456 and float(i2d["gmacs"]) > 0
    appearance = next(r for r in records if r["run"] == "tiny_i2d-appearance-s0")
    assert appearance["pairwise_reversal"] == ""  # no partners in the appearance task


def test_costs_come_from_video_s3d_cost(report):
    rows, _, _ = report
    full = {r.model: r.full_gmacs for r in rows}
    assert full["tiny_i3d"] == pytest.approx(111.15, abs=0.01)  # README: 111.2 G at 64x224²
    assert (
        full["tiny_i2d"]
        < full["tiny_top_heavy_i3d_6"]
        < full["tiny_top_heavy_i3d_3"]
        < full["tiny_bottom_heavy_i3d_3"]
        < full["tiny_i3d"]
    )
    gmacs = {r.model: r.gmacs for r in rows}
    # 2D < 3D; separable cheaper than full 3D; gating adds almost nothing.
    assert (
        gmacs["tiny_i2d"]
        < gmacs["tiny_top_heavy_i3d_6"]
        < gmacs["tiny_top_heavy_i3d_3"]
        < gmacs["tiny_i3d"]
    )
    assert gmacs["tiny_s3d"] < gmacs["tiny_i3d"]
    assert gmacs["tiny_s3d"] == pytest.approx(gmacs["tiny_s3dg"], rel=0.05)


def _is_png_with_content(path) -> bool:
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.std() > 0.01


def test_plots_are_drawn(report):
    _, out, _ = report
    assert _is_png_with_content(out / "speed_accuracy.png")
    assert _is_png_with_content(out / "cut_points.png")


def test_pareto_front():
    points = [(1.0, 50.0), (2.0, 70.0), (2.0, 60.0), (3.0, 65.0), (4.0, 80.0), (0.5, 40.0)]
    assert speed_accuracy.pareto_front(points) == [5, 0, 1, 4]


def test_cut_points_of_the_sweep_ends():
    ends = speed_accuracy.cut_points("tiny_i2d")
    assert speed_accuracy.CutPoint("i3d", "bottom", 0) in ends
    assert speed_accuracy.CutPoint("i3d", "top", 10) in ends
    assert speed_accuracy.cut_points("top_heavy_s3d_4") == [
        speed_accuracy.CutPoint("s3d", "top", 4)
    ]
    assert speed_accuracy.cut_points("s3dg") == []


def test_workdir_lists_and_globs(study_dir):
    first = f"{study_dir}/tiny_i2d-order-s0"
    found = speed_accuracy.find_workdirs([f"{first},{study_dir}/tiny_i2d-*-s0", first])
    assert found == [first] + [
        f"{study_dir}/tiny_i2d-{t}-s0" for t in ("appearance", "flash_order")
    ]


def test_nothing_to_read_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="No workdir matches"):
        speed_accuracy.write_report([f"{tmp_path}/nothing-*"], str(tmp_path / "out"))
    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match="holds a result.json"):
        speed_accuracy.write_report([f"{tmp_path}/run"], str(tmp_path / "out"))


# --------------------------------------------------------------------------- paper study
def test_study_reports_every_finding_from_the_runs(study_dir, tmp_path):
    lines = []
    found = paper_study.run_study(str(study_dir), str(tmp_path / "out"), log=lines.append)
    # Every run was finished: none is started again.
    assert sum("finished before" in line for line in lines) == 60
    assert [f.verdict for f in found] == [paper_study.REPRODUCED] * 5, found
    text = (tmp_path / "out" / paper_study.FINDINGS_FILE).read_text()
    assert "(60 runs, 3 seeds per model and task)" in text
    partial = paper_study.findings_markdown(found, 43, num_seeds=(2, 3))
    assert "(43 runs, 2-3 seeds per model and task)" in partial  # a study stopped early
    assert "order: right reversal partner in 50.0% (95% CI" in text  # I2D between partners
    # Gating on order: +10 points every seed; the interval comes from the evaluation floor.
    assert "order: S3D-G 90.0% vs S3D 80.0%, difference +10.0 points (95% CI" in text
    assert "3 seeds; detectable >=" in text
    assert text.count("top-heavy minus bottom-heavy") == 4  # 2 cuts on each ordered task
    assert (tmp_path / "out" / "cut_points.png").exists()
    assert "Warning" not in text  # every run on the same (here: unrecorded) dataset version


def test_the_archive_keeps_finished_runs_for_a_later_study(study_dir, tmp_path):
    """A study with --archive copies each finished run's result into it; a later study in an
    empty workdir restores them instead of training again."""
    archive, lines = tmp_path / "archive", []
    paper_study.run_study(
        str(study_dir), str(tmp_path / "out"), log=lines.append, archive=str(archive)
    )
    assert any(line.startswith("60 run(s) added to") for line in lines)
    kept = sorted(p.name for p in (archive / "tiny_s3d-order-s2").iterdir())
    assert kept == ["config.json", "result.json"]  # fixture runs have no run_time.json
    lines.clear()
    found = paper_study.run_study(
        str(tmp_path / "later"), str(tmp_path / "out2"), log=lines.append, archive=str(archive)
    )
    assert any(line.startswith("60 finished run(s) restored from") for line in lines)
    assert sum("finished before" in line for line in lines) == 60  # nothing trained
    assert [f.verdict for f in found] == [paper_study.REPRODUCED] * 5
    findings = [(tmp_path / d / paper_study.FINDINGS_FILE).read_text() for d in ("out", "out2")]
    assert findings[0] == findings[1]


def test_a_data_scarce_study_trains_on_a_slice_and_refuses_full_data_runs(study_dir, tmp_path):
    scarce = paper_study.get_sweep("train_videos=1000")
    assert [r.name for r in scarce] == [r.name for r in paper_study.get_sweep()]
    assert {r.overrides["data.train_split"] for r in scarce} == {"train[:1000]"}
    assert "data.train_split" not in paper_study.get_sweep()[0].overrides
    # The fixture's runs used every training video: reporting them as this study's is refused,
    # and none of them reaches this study's archive.
    lines, archive = [], tmp_path / "archive"
    with pytest.raises(UserError, match="trained with other settings"):
        paper_study.run_study(
            str(study_dir),
            str(tmp_path / "out"),
            "train_videos=1000",
            log=lines.append,
            archive=str(archive),
        )
    assert not archive.exists() or not any(archive.iterdir())
    assert "60 run(s) trained with other settings left out of" in lines[-1]


def test_findings_of_an_earlier_recipes_runs_without_training(study_dir, tmp_path, capsys):
    """`--workdirs` writes the table and findings.md of finished runs that the study itself
    refuses to reuse, because another recipe trained them."""
    earlier = tmp_path / "earlier"
    shutil.copytree(study_dir, earlier, ignore=shutil.ignore_patterns("unfinished"))
    config_file = earlier / "tiny_s3d-order-s2" / "config.json"
    config = json.loads(config_file.read_text())
    config["model"]["kernel_init"] = "he"  # session 13's recipe
    config_file.write_text(json.dumps(config))
    with pytest.raises(UserError, match="tiny_s3d-order-s2: model.kernel_init"):
        paper_study.run_study(str(earlier), str(tmp_path / "refused"), log=lambda _: None)
    out = tmp_path / "out"
    assert paper_study.main([f"--workdirs={earlier}/*", f"--out={out}"]) == 0
    assert "| 3 | At equal cost" in (out / paper_study.FINDINGS_FILE).read_text()
    assert (out / "speed_accuracy.png").exists()
    assert paper_study.main([f"--workdirs={tmp_path}/none*", f"--out={out}"]) == 2
    assert "holds no finished run (result.json)" in capsys.readouterr().err


def test_runs_on_different_dataset_versions_are_flagged(study_dir, tmp_path):
    """A sweep re-started after a dataset changed would compare old runs with new ones."""
    runs = ["tiny_i2d-order-s0", "tiny_i3d-order-s0", "tiny_i2d-appearance-s0"]
    for run, version in zip(runs, ["1.3.0", "1.4.0", "1.3.0"]):
        shutil.copytree(study_dir / run, tmp_path / run)
        result = json.loads((tmp_path / run / "result.json").read_text())
        (tmp_path / run / "result.json").write_text(
            json.dumps(dict(result, dataset_version=version))
        )
    lines = []
    rows = speed_accuracy.write_report(
        [f"{tmp_path}/tiny_*"], str(tmp_path / "out"), log=lines.append
    )
    warning = (
        "the runs on synthetic_motion/order were trained on different versions of it "
        "(1.3.0: tiny_i2d-order-s0; 1.4.0: tiny_i3d-order-s0); move the older runs' "
        "workdirs aside and run the sweep again before comparing them."
    )
    assert f"WARNING: {warning}" in lines and sum(l.startswith("WARNING") for l in lines) == 1
    assert f"**Warning:** {warning}" in (tmp_path / "out" / "speed_accuracy.md").read_text()
    found = paper_study.findings(rows)
    assert warning in paper_study.findings_markdown(found, 3, speed_accuracy.mixed_versions(rows))


def _rows_with(report_rows, changes):
    """The fixture rows with some (model, task) -> (top1, reversed) replaced, or -> {seed:
    (top1, reversed)} for per-seed values."""
    rows = []
    for row in report_rows:
        key = (row.model.removeprefix("tiny_"), row.dataset.split("/")[-1])
        new = dict(vars(row))
        if key in changes:
            change = changes[key]
            change = change.get(paper_study.run_seed(row)) if isinstance(change, dict) else change
            new["video_top1"], new["reversed_video_top1"] = change
        rows.append(speed_accuracy.RunRow(**new))
    return rows


def test_fabricated_results_flip_the_verdicts(report):
    """The verdicts are computed from the runs: S3D-G below S3D on every task turns 'gating
    helps' from reproduced to not reproduced; I3D far ahead of S3D does the same to claim 4."""
    rows = report[0]
    assert paper_study.gating_helps(paper_study.scores(rows)).verdict == paper_study.REPRODUCED
    worse = {("s3dg", task): (SCORES[task]["s3d"][0] - 0.10, 0.05) for task in paper_study.TASKS}
    gating = paper_study.gating_helps(paper_study.scores(_rows_with(rows, worse)))
    assert gating.verdict == paper_study.NOT_REPRODUCED and "difference -" in gating.evidence
    i3d_ahead = {("i3d", task): (SCORES[task]["s3d"][0] + 0.08, 0.05) for task in paper_study.TASKS}
    assert (
        paper_study.s3d_beats_i3d(paper_study.scores(_rows_with(rows, i3d_ahead))).verdict
        == paper_study.NOT_REPRODUCED
    )
    assert (
        paper_study.i2d_is_order_blind(paper_study.scores(rows)).verdict == paper_study.REPRODUCED
    )


def test_a_gain_that_does_not_survive_a_reseed_is_inconclusive(report):
    """Same mean gain of S3D-G over S3D, but spread over seeds as the old appearance recipe was
    (24/75/68% against 52/76/84%): the interval straddles zero."""
    rows = report[0]
    spread = {
        ("s3dg", task): {
            0: (SCORES[task]["s3d"][0] - 0.30, 0.05),
            1: (SCORES[task]["s3d"][0] + 0.28, 0.05),
            2: (SCORES[task]["s3d"][0] + 0.32, 0.05),
        }
        for task in paper_study.TASKS
    }
    gating = paper_study.gating_helps(paper_study.scores(_rows_with(rows, spread)))
    assert gating.verdict == paper_study.INCONCLUSIVE, gating


def test_findings_list_each_models_seed_spread_and_flag_those_over_the_limit(report):
    """The spread table is computed from the runs: a fabricated 12-point spread of S3D-G on one
    task is the one flagged; one seed per (model, task) gives no table."""
    rows = report[0]
    table = paper_study.seed_spread_markdown(paper_study.scores(rows))
    assert "0 of " in table and "**" not in table
    task = next(iter(SCORES))
    top1 = SCORES[task]["s3dg"][0]
    spread = {("s3dg", task): {0: (top1 - 0.06, 0.05), 1: (top1, 0.05), 2: (top1 + 0.06, 0.05)}}
    table = paper_study.seed_spread_markdown(paper_study.scores(_rows_with(rows, spread)))
    assert "1 of " in table and f"s3dg on {task}." in table
    assert f"| s3dg | {task} | " in table and "| **12.0** |" in table
    one_seed = [r for r in rows if paper_study.run_seed(r) == 0]
    assert paper_study.seed_spread_markdown(paper_study.scores(one_seed)) == ""


def test_findings_add_up_what_the_runs_cost_from_their_recorded_times(report, tmp_path):
    """Core-hours per task from each run's run_time.json (wall time times cores), the wall time
    on the study machine's cores, and the runs with no record named, not counted as free."""
    rows = [r for r in report[0] if paper_study.run_seed(r) == 0]
    pick = {
        task: next(r for r in rows if paper_study._task(r) == task) for task in paper_study.TASKS
    }
    recorded = {"flash_order": (1800.0, 1), "order": (900.0, 2)}  # (wall_s, cpu_cores)
    moved = []
    for task, row in pick.items():
        workdir = tmp_path / row.run
        workdir.mkdir()
        if task in recorded:
            wall_s, cores = recorded[task]
            (workdir / "run_time.json").write_text(
                json.dumps({"wall_s": wall_s, "cpu_cores": cores})
            )
        moved.append(dataclasses.replace(row, workdir=str(workdir)))
    text = paper_study.compute_markdown(moved, cores=2)
    assert "| flash_order | 1 | 0.50 |" in text
    assert "| order | 1 | 0.50 |" in text
    assert "| all | 2 | 1.00 |" in text
    assert "On 2 cores, one run per core, that is 0.50 h of wall time" in text
    assert f"not counted: {pick['appearance'].run}." in text
    assert paper_study.compute_markdown([]) == ""


def test_one_seed_says_its_interval_is_evaluation_noise_only(report):
    rows = [r for r in report[0] if paper_study.run_seed(r) == 0]
    found = paper_study.gating_helps(paper_study.scores(rows))
    assert "1 seed: evaluation noise only" in found.evidence
    assert found.verdict == paper_study.REPRODUCED  # +8-11 points against ~4 points of noise


def test_intervals_and_detectable_effects():
    three = paper_study.interval([0.10, 0.12, 0.14], evaluation_se=0.0)
    # mean 0.12, sd 0.02, se 0.02/sqrt(3); t(0.975, 2) = 4.303, t(0.8, 2) = 1.061.
    assert three.mean == pytest.approx(0.12)
    assert three.high - three.mean == pytest.approx(4.303 * 0.02 / np.sqrt(3), rel=1e-3)
    assert three.detectable == pytest.approx((4.303 + 1.061) * 0.02 / np.sqrt(3), rel=1e-3)
    # Seeds that agree exactly still keep the evaluation noise.
    agreeing = paper_study.interval([0.5, 0.5, 0.5], evaluation_se=0.03)
    assert agreeing.high - agreeing.low > 0.1
    assert paper_study.gain_verdict(three) == paper_study.REPRODUCED
    assert (
        paper_study.gain_verdict(paper_study.interval([-0.004, 0.0, 0.004], 0.001))
        == paper_study.NOT_REPRODUCED
    )  # inside the +-2 point band: no effect
    assert (
        paper_study.gain_verdict(paper_study.interval([-0.2, 0.1, 0.3], 0.0))
        == paper_study.INCONCLUSIVE
    )


def test_findings_without_learning_are_inconclusive(report):
    chance = {(m, t): (0.11, 0.10) for m in ("i3d", "s3d", "s3dg") for t in ("order",)}
    found = paper_study.three_d_needs_time(paper_study.scores(_rows_with(report[0], chance)))
    assert "not learned: not judged" in found.evidence
    every = {(m, t): (0.11, 0.10) for m in ("i3d", "s3d", "s3dg") for t in SCORES}
    found = paper_study.three_d_needs_time(paper_study.scores(_rows_with(report[0], every)))
    assert found.verdict == paper_study.INCONCLUSIVE


def test_nothing_learned_makes_every_finding_inconclusive(report):
    """Runs at chance level (e.g. far too few steps) support no claim, for or against."""
    at_chance = {(m, t): (0.10, 0.10) for t, scores in SCORES.items() for m in scores}
    found = paper_study.findings(_rows_with(report[0], at_chance))
    assert [f.verdict for f in found] == [paper_study.INCONCLUSIVE] * 5, found


def test_findings_without_runs_say_which_are_missing(report):
    rows = [r for r in report[0] if "s3dg" not in r.model]
    gating = paper_study.gating_helps(paper_study.scores(rows))
    assert gating.verdict == paper_study.MISSING and "s3dg on order" in gating.evidence


# --------------------------------------------------------------------------- study clip shape
@pytest.mark.parametrize("model", paper_study.study_models())
def test_every_3d_layer_of_every_study_model_sees_at_least_two_frames(model):
    assert paper_study.clip_shapes() == {(13, 48), (69, 32)}
    for frames, crop in paper_study.clip_shapes():
        assert paper_study.endpoint_frames(model, "Mixed_5c", frames, crop) >= 2
    # Not vacuous: the old 5-frame clips left one frame there.
    assert paper_study.endpoint_frames(model, "Mixed_5c", num_frames=5) == 1


def test_study_clips_keep_i2d_exactly_blind_to_frame_order():
    """T = 5 (mod 8) makes every strided temporal grid of I2D mirror-symmetric
    (tests/test_models.py::test_i2d_time_reversal_invariance_depends_on_clip_length): its
    logits do not change when the clip is reversed."""
    import jax
    import jax.numpy as jnp

    from video_s3d import models

    frames = paper_study.RUN_SETTINGS["data.num_frames"]
    assert all(frames % 8 == 5 for frames, _ in paper_study.clip_shapes())
    model = models.create("tiny_i2d", 10)
    clip = jax.random.uniform(jax.random.key(0), (2, frames, 32, 32, 3), minval=-1, maxval=1)
    # O(1) activations throughout (the TF-Slim init leaves the logits ~1e-19: vacuous).
    variables = lively(
        jax.eval_shape(
            lambda x: model.init(
                {"params": jax.random.key(1), "dropout": jax.random.key(2)}, x, train=False
            ),
            clip,
        )
    )
    forward = jax.jit(lambda x: model.apply(variables, x))
    logits, reversed_logits = forward(clip), forward(jnp.flip(clip, axis=1))
    assert float(jnp.abs(logits - reversed_logits).max()) < 1e-5 * float(jnp.abs(logits).max() + 1)
    assert float(jnp.abs(logits[0] - logits[1]).max()) > 1e-4  # the logits do see the clip


def test_two_stream_pairs_parse_or_are_refused_in_one_sentence():
    from video_s3d.errors import UserError

    assert speed_accuracy.parse_pairs(["runs/rgb:runs/flow,gs://b/rgb:gs://b/flow/"]) == [
        ("runs/rgb", "runs/flow"),
        ("gs://b/rgb", "gs://b/flow"),
    ]
    for bad in ("runs/rgb", "runs/a:runs/b:runs/c", ":runs/flow"):
        with pytest.raises(UserError, match="RGB_RUN:FLOW_RUN"):
            speed_accuracy.parse_pairs([bad])
    with pytest.raises(SystemExit):
        speed_accuracy.main(["--out=/tmp/nowhere"])  # no runs at all: a usage error


def test_seeds_of_one_model_are_one_plotted_point_at_their_mean():
    def row(model, top1, seed, dataset="d"):
        return speed_accuracy.RunRow(
            run=f"{model}-s{seed}",
            workdir="",
            model=model,
            dataset=dataset,
            num_classes=10,
            num_frames=13,
            crop_size=48,
            step=10,
            params=1,
            full_gmacs=64.2 if "s3d" in model else 111.2,
            video_top1=top1,
        )

    rows = [row("tiny_s3d", 0.80, 0), row("tiny_i3d", 0.90, 0), row("tiny_s3d", 0.90, 1)]
    points = speed_accuracy.model_points(rows)
    assert [p.label for p in points] == ["tiny_s3d", "tiny_i3d"]
    assert points[0].accuracies == pytest.approx([80.0, 90.0])
    assert points[0].mean == pytest.approx(85.0)
    # The front is over the means: S3D's mean (85) is cheaper but below I3D's 90, so both lie on it.
    assert speed_accuracy.pareto_front([(p.cost, p.mean) for p in points]) == [0, 1]


# --------------------------------------------------------------------------- the probe
def test_study_runs_and_probes_hold_the_off_centre_taps_early_in_the_warm_up(capsys):
    from experiments import study_probe

    runs = paper_study.get_sweep("steps=1000,seeds=1")
    for run in runs:
        # flash_order and far_flash_order train twice as long, their schedules scaled with it.
        factor = 2 if "flash_order-" in run.name else 1
        assert run.overrides["num_train_steps"] == 1000 * factor
        assert run.overrides["checkpoint_every_steps"] == 1000 * factor
        assert run.overrides["optim.warmup_steps"] == 300 * factor
        assert run.overrides["optim.off_centre_delay_steps"] == 150 * factor
        assert run.overrides["optim.off_centre_ramp_steps"] == 150 * factor
    assert sum("-flash_order-" in run.name for run in runs) == 8
    assert {r.overrides["data.num_frames"] for r in runs} == {13}
    args = study_probe.build_parser().parse_args(["--steps=20"])
    args.num_frames, args.stride, args.crop_size = 5, 2, 16
    config = study_probe.probe_config("tiny_i3d", "flash_order", args)
    assert (config.optim.warmup_steps, config.optim.off_centre_delay_steps) == (6, 3)

    # The probe end to end on a few tiny clips: it trains and reports precise-BN top-1.
    argv = (
        "--synthetic_task=flash_order --models=tiny_i3d --seeds=0 --steps=2 --train_clips=8 "
        "--num_frames=5 --crop_size=16 --log_every=1".split()
    )
    with pytest.raises(SystemExit, match="less than one evaluation batch; use at least 32"):
        study_probe.main([*argv, "--eval_clips=4"])
    study_probe.main([*argv, "--eval_clips=32"])
    printed = capsys.readouterr().out
    assert "RESULT tiny_i3d flash_order init 0 data 0" in printed
    assert "SUMMARY tiny_i3d flash_order: precise-BN top-1" in printed


def test_the_far_study_trains_claim_3s_runs_on_the_long_clips_and_judges_them(tmp_path):
    """`--far`: bottom-/top-heavy I3D cut 3, I3D and I2D on far_flash_order's whole 69-frame
    clips, twice the steps; its findings judge claim 3 there from the runs."""
    runs = paper_study.get_sweep("steps=1000,seeds=3,far")
    assert [r.name for r in runs[:4]] == [
        f"tiny_{m}-far_flash_order-s0" for m in paper_study.FAR_MODELS
    ]
    assert len(runs) == 12 and {r.seed for r in runs} == {0, 1, 2}
    for run in runs:
        assert run.overrides["data.num_frames"] == 69 and run.overrides["data.stride"] == 1
        assert run.overrides["data.crop_size"] == 32
        assert run.overrides["num_train_steps"] == 2000
    for run in runs:
        model = dict(a.split("=", 1) for a in run.args)["model"]
        top1, reversed_top1, pairwise = FAR_FLASH_ORDER[model.removeprefix("tiny_")]
        shift = SEED_SHIFT[run.seed]
        write_result(
            run.workdir(str(tmp_path)),
            model,
            paper_study.FAR_TASK,
            top1 + shift,
            reversed_top1 + shift,
            pairwise,
            seed=run.seed,
            overrides=run.overrides,
        )
    found = paper_study.write_findings(
        [r.workdir(str(tmp_path)) for r in runs], str(tmp_path / "out"), log=lambda _: None
    )
    claim_3 = next(f for f in found if f.claim.startswith("At equal cost"))
    assert claim_3.verdict == paper_study.REPRODUCED
    assert "far_flash_order at 100.0 GMACs: top-heavy minus bottom-heavy-3 +" in claim_3.evidence
    # Claim 1 needs I2D on appearance, which the far study does not train.
    claim_1 = found[0]
    assert claim_1.verdict == paper_study.MISSING
    assert "i2d on appearance" in claim_1.evidence


def test_temporal_reach_of_the_study_models(capsys):
    """The 2D stem's temporal stride drops every other frame for good; a bottom-heavy net's
    3D layers reach the whole 13-frame clip by Mixed_3b (the cause of claim 3's saturation)."""
    assert temporal_reach.main(["--models=tiny_i2d", "--crop_size=32"]) == 0
    # Frames reaching each endpoint: 1 at the 1-tap stem, then the Inception max-pools' and
    # MaxPool_4a's temporal windows, up to the 7 frames the stem keeps.
    assert "| tiny_i2d | 1 | 1 | 3 | 5 | 7 | 7 | 7 | Mixed_4b |" in capsys.readouterr().out
    bottom = temporal_reach.reach("tiny_bottom_heavy_i3d_3", 13, 32)
    assert bottom["Conv_1a"] == tuple(range(3, 10))  # 7 taps around the middle frame
    assert temporal_reach.first_full_reach(bottom) == "Mixed_3b"
    assert bottom["Mixed_5c"] == tuple(range(13))
