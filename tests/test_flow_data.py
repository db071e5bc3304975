"""Flow datasets: TV-L1 flow stored as grayscale JPEG pairs, read back by the flow pipeline."""

import os

import numpy as np
import tensorflow_datasets as tfds

from tests import inference_testing
from tests.conftest import TINY_MOTION, TINY_MOTION_FLOW
from video_s3d.data import sources
from video_s3d.data.builders import (
    flow_frames,
    synthetic_motion,
    synthetic_render,
    video_files,
    video_folder,
)


def _level_errors(stored: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    error = np.abs(stored.astype(np.int32) - expected.astype(np.int32))
    return float(error.mean()), float(np.percentile(error, 99))


def test_synthetic_flow_frames_decode_to_the_stored_flow_within_the_stated_error(flow_data_dir):
    source = sources.get(TINY_MOTION_FLOW, flow_data_dir)
    assert source.modality == "flow" and sources.get(TINY_MOTION, flow_data_dir).modality == "rgb"
    config = source.builder.builder_config
    assert dict(source.info().split_sizes) == {"train": 48, "validation": 40}
    examples = tfds.as_numpy(source.builder.as_dataset(split="validation[:4]"))
    for example in examples:  # stored shuffled: the id says which clip
        index = int(example["video_id"].decode().removeprefix("validation_"))
        clip = synthetic_render.make_clip(
            "motion", int(example["label"]), (config.seed, 1, index), 16, 32
        )  # the RGB config's clip: the same frames
        flow = flow_frames.compute(clip, synthetic_motion.TINY_FLOW_PARAMS)
        assert flow.shape == (15, 32, 32, 2) and np.abs(flow).max() > 0.02  # it moves
        expected = flow_frames.to_levels(flow)
        stored = np.concatenate([example["flow_x"], example["flow_y"]], axis=-1)
        mean, p99 = _level_errors(stored, expected)
        assert mean <= flow_frames.STATED_MEAN_LEVELS and p99 <= flow_frames.STATED_P99_LEVELS
        # One grey level is 2/255 of [-1, 1]: the decoded flow is that close to the computed.
        decoded = flow_frames.from_levels(stored)
        assert np.abs(decoded - flow).mean() <= (flow_frames.STATED_MEAN_LEVELS + 0.5) * 2 / 255


def test_manual_dir_flow_config_stores_the_flow_of_the_decoded_frames_and_skips_bad_videos(
    tmp_path,
):
    videos = str(tmp_path / "videos")
    paths = []
    for label, name in enumerate(("jumping", "waving")):
        os.makedirs(os.path.join(videos, name))
        path = os.path.join(videos, name, "v0.mp4")
        video_files.write_video(path, inference_testing.motion_frames(label, seed=0, num_frames=8))
        paths.append(path)
    inference_testing.write_corrupt(os.path.join(videos, "waving", "broken.mp4"))
    # A small short side keeps TV-L1 cheap; the released configs store 256.
    config = video_folder.VideoConfig(name="mine_flow", fps=25.0, short_side=32, flow=True)
    builder = video_folder.VideoFolder(config=config, data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=videos))
    assert [row[1] for row in builder.skipped] == ["waving/broken"]
    examples = {
        ex["video_id"].decode(): ex
        for split in builder.info.splits
        for ex in tfds.as_numpy(builder.as_dataset(split=split))
    }
    assert sorted(examples) == ["jumping/v0", "waving/v0"]
    for path, video_id in zip(paths, ("jumping/v0", "waving/v0")):
        frames, _ = video_files.read_video(path, fps=25.0, short_side=32)
        expected = flow_frames.to_levels(flow_frames.compute(frames))
        stored = np.concatenate([examples[video_id]["flow_x"], examples[video_id]["flow_y"]], -1)
        assert stored.shape == (len(frames) - 1, 32, 40, 2)
        mean, p99 = _level_errors(stored, expected)
        assert mean <= flow_frames.STATED_MEAN_LEVELS and p99 <= flow_frames.STATED_P99_LEVELS


def test_every_manual_builder_has_flow_twins_of_its_rgb_configs():
    from video_s3d.data import builders

    for cls in (
        builders.Ucf101Manual,
        builders.Hmdb51,
        builders.Kinetics400,
        builders.SomethingSomethingV1,
        builders.SomethingSomethingV2,
    ):
        configs = {c.name: c for c in cls.BUILDER_CONFIGS}
        rgb = [c for c in configs.values() if not c.flow]
        assert rgb and len(configs) == 2 * len(rgb)
        for config in rgb:
            twin = configs["flow" if config.name == "default" else f"{config.name}_flow"]
            assert twin.flow and (twin.fps, twin.short_side, twin.fold) == (
                config.fps,
                config.short_side,
                config.fold,
            )
    assert video_folder._config("mine_flow").flow and not video_folder._config("mine").flow
    assert sources.get("hmdb51/split2_flow").modality == "flow"
