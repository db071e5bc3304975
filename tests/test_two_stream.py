"""Two-stream fusion: a tiny RGB run and a tiny flow run on synthetic_motion, fused per video."""

import json

import numpy as np
import pytest

from experiments import synthetic_motion
from video_s3d import train, two_stream


def _tiny_run(workdir: str, data_dir: str, modality: str) -> str:
    config = synthetic_motion.get_config(
        f"runlocal,model=tiny_i2d,config=motion_tiny,modality={modality}"
    )
    config.data.data_dir = data_dir
    config.num_train_steps = 4
    config.checkpoint_every_steps = 4
    config.reverse_time_eval = False
    train.train_and_evaluate(config, workdir)
    return workdir


@pytest.fixture(scope="module")
def runs(flow_data_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("two_stream")
    rgb = _tiny_run(str(base / "rgb"), flow_data_dir, "rgb")
    flow = _tiny_run(str(base / "flow"), flow_data_dir, "flow")
    return rgb, flow


def test_fused_accuracy_is_printed_beside_each_stream_and_uses_both_logits(runs, capsys):
    rgb_workdir, flow_workdir = runs
    result, shown = two_stream.evaluate_two_stream(rgb_workdir, flow_workdir, step="latest")
    print(shown)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["rgb", "flow", "rgb+flow"]
    assert all("%" in line for line in lines[1:4]) and result["num_videos"] == 40
    scores = result["scores"]
    rgb, flow, fused = scores["rgb"], scores["flow"], scores["rgb+flow"]
    assert rgb.shape == flow.shape == (40, 10)
    assert not np.allclose(rgb, flow)  # two different networks on different inputs
    np.testing.assert_allclose(fused, (rgb + flow) / 2)  # the I3D release's logit fusion
    assert not np.allclose(fused, rgb) and not np.allclose(fused, flow)
    # The other fusion: mean of the softmax scores, a distribution per video.
    soft = two_stream.fuse(rgb, flow, "softmax")
    np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-6)
    assert not np.allclose(soft, two_stream.fuse(rgb, rgb, "softmax"))


def test_swapped_or_mismatched_runs_are_refused_in_one_sentence(runs, capsys):
    rgb_workdir, flow_workdir = runs
    assert two_stream.main([f"--rgb_workdir={flow_workdir}", f"--flow_workdir={rgb_workdir}"]) == 2
    assert "holds a flow run" in capsys.readouterr().err
    rgb = {"video_index": np.arange(3), "labels": np.zeros(3), "run": "a", "logits": None}
    flow = {"video_index": np.arange(2), "labels": np.zeros(2), "run": "b", "logits": None}
    with pytest.raises(ValueError, match="different videos"):
        two_stream.fuse_streams(rgb, flow)


def test_predict_fuses_an_rgb_and_a_flow_run_on_a_video_file(runs, tmp_path, capsys):
    from video_s3d import predict
    from video_s3d.data.builders import synthetic_render, video_files

    rgb_workdir, flow_workdir = runs
    path = str(tmp_path / "clip.mp4")
    video_files.write_video(path, synthetic_render.make_clip("motion", 3, 7, 16, 32))
    argv = [f"--workdir={rgb_workdir}", f"--video={path}", "--json", "--step=latest"]
    assert predict.main(argv + [f"--flow_workdir={flow_workdir}"]) == 0
    fused = capsys.readouterr()
    assert "fused (logits) with tiny_i2d" in fused.err
    assert predict.main(argv) == 0
    alone = capsys.readouterr()
    fused_top, rgb_top = (json.loads(out.out.splitlines()[0])["top_k"] for out in (fused, alone))
    assert fused_top != rgb_top  # the flow stream changed the probabilities
    assert predict.main(argv[:1] + [f"--flow_workdir={rgb_workdir}", f"--video={path}"]) == 2
    assert "a flow run" in capsys.readouterr().err


def test_features_export_the_flow_stream_of_a_video_file(runs, tmp_path):
    from video_s3d import features
    from video_s3d.data.builders import synthetic_render, video_files

    _, flow_workdir = runs
    path = str(tmp_path / "clip.mp4")
    video_files.write_video(path, synthetic_render.make_clip("motion", 5, 9, 16, 32))
    out = str(tmp_path / "flow_features.npz")
    argv = [f"--workdir={flow_workdir}", f"--video={path}", "--endpoint=PreLogits"]
    assert features.main(argv + [f"--out={out}", "--step=latest"]) == 0
    saved = np.load(out)
    assert saved["features"].shape[0] == 1 and np.isfinite(saved["features"]).all()


def test_python_api_gives_a_flow_run_the_flow_of_rgb_frames(runs):
    import video_s3d
    from video_s3d.data.builders import synthetic_render

    _, flow_workdir = runs
    model = video_s3d.load(flow_workdir, step="latest")
    frames = synthetic_render.make_clip("motion", 1, 4, 16, 32)
    logits = model.logits(frames)
    assert logits.shape == (10,) and np.isfinite(logits).all()


def test_speed_accuracy_table_has_rgb_flow_and_fused_rows_costing_the_flow(runs, tmp_path):
    from experiments import speed_accuracy
    from video_s3d.data.builders import synthetic_motion
    from video_s3d.errors import UserError
    from video_s3d.flow import TVL1Params
    from video_s3d.flow import cost as flow_cost

    rgb_workdir, flow_workdir = runs
    pairs = speed_accuracy.parse_pairs([f"{rgb_workdir}:{flow_workdir}"])
    rows = speed_accuracy.write_report([], str(tmp_path / "out"), two_stream=pairs, log=print)
    by_stream = {row.stream: row for row in rows}
    assert sorted(by_stream) == ["Flow", "RGB", "RGB+Flow"] and len(rows) == 3
    rgb, flow, fused = (by_stream[s] for s in ("RGB", "Flow", "RGB+Flow"))
    # The Flow row: the 2-channel network plus TV-L1 on one pair per flow field, at the
    # tiny flow dataset's own TV-L1 setting; at full size, OpenCV's defaults at 64x224².
    tvl1 = flow_cost.clip_gmacs(
        flow.num_frames, flow.crop_size, TVL1Params(**synthetic_motion.TINY_FLOW_PARAMS)
    )
    network = speed_accuracy.model_gmacs(
        flow.model, flow.num_frames, flow.crop_size, flow.num_classes, in_channels=2
    )
    assert flow.flow_gmacs == pytest.approx(tvl1) and flow.gmacs == pytest.approx(network + tvl1)
    assert network < rgb.gmacs  # same network, one input channel fewer in the stem
    assert rgb.flow_gmacs is None and tvl1 > rgb.gmacs  # TV-L1 costs more than tiny I2D
    full_tvl1 = flow_cost.clip_gmacs(64, 224)
    assert flow.full_flow_gmacs == pytest.approx(full_tvl1)
    assert flow.full_gmacs == pytest.approx(
        speed_accuracy.full_size_gmacs(flow.model, in_channels=2) + full_tvl1
    )
    # RGB+Flow: both networks and the flow; the accuracy is two_stream's fusion.
    assert fused.gmacs == pytest.approx(rgb.gmacs + flow.gmacs)
    assert fused.full_gmacs == pytest.approx(rgb.full_gmacs + flow.full_gmacs)
    assert fused.params == rgb.params + flow.params
    result, _ = two_stream.evaluate_two_stream(rgb_workdir, flow_workdir, step="latest")
    assert fused.video_top1 == result["metrics"]["rgb+flow"]["video_top1"]
    assert fused.num_videos == 40
    table = (tmp_path / "out" / "speed_accuracy.md").read_text()
    assert "| RGB+Flow |" in table and "| Flow |" in table
    # Pairs are checked before any evaluation: a swapped pair is one sentence.
    with pytest.raises(UserError, match="the first is a Flow run and the second a RGB run"):
        speed_accuracy.two_stream_rows([(flow_workdir, rgb_workdir)], rows)
