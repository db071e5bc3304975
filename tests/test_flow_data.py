"""Flow datasets: TV-L1 flow stored as grayscale JPEG pairs, read back by the flow pipeline."""

import io
import os

import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests import inference_testing
from tests.conftest import TINY_MOTION, TINY_MOTION_FLOW
from video_s3d import normalization
from video_s3d.data import pipeline, sources, video_ops
from video_s3d.data.builders import (
    flow_frames,
    synthetic_motion,
    synthetic_render,
    video_files,
    video_folder,
)
from video_s3d.errors import UserError


def _level_errors(stored: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    error = np.abs(stored.astype(np.int32) - expected.astype(np.int32))
    return float(error.mean()), float(np.percentile(error, 99))


def test_synthetic_flow_frames_decode_to_the_stored_flow_within_the_stated_error(flow_data_dir):
    source = sources.get(TINY_MOTION_FLOW, flow_data_dir)
    assert source.modality == "flow" and sources.get(TINY_MOTION, flow_data_dir).modality == "rgb"
    config = source.builder.builder_config
    assert dict(source.info().split_sizes) == {"train": 48, "validation": 40}
    skip = {key: tfds.decode.SkipDecoding() for key in ("flow_x", "flow_y")}  # raw JPEGs
    for example in tfds.as_numpy(source.builder.as_dataset(split="validation[:4]", decoders=skip)):
        index = int(example["video_id"].decode().removeprefix("validation_"))  # stored shuffled
        clip = synthetic_render.make_clip(
            "motion", int(example["label"]), (config.seed, 1, index), 16, 32
        )
        flow = flow_frames.compute(clip, synthetic_motion.TINY_FLOW_PARAMS)  # the RGB clip's
        assert flow.shape == (15, 32, 32, 2) and np.abs(flow).max() > 0.005  # > 0.1 px
        expected = flow_frames.to_levels(flow)
        jpegs = np.stack([example["flow_x"], example["flow_y"]], axis=1)
        stored = video_ops.decode_flow(jpegs, [0, 0, 32, 32]).numpy()  # the pipeline's decode
        mean, p99 = _level_errors(stored, expected)
        assert mean <= flow_frames.STATED_MEAN_LEVELS and p99 <= flow_frames.STATED_P99_LEVELS
        # One grey level is 2/255 of [-1, 1]: the decoded flow is that close to the computed.
        decoded = flow_frames.from_levels(stored)
        assert np.abs(decoded - flow).mean() <= (flow_frames.STATED_MEAN_LEVELS + 0.5) * 2 / 255


def test_flow_batches_normalise_to_the_flow_and_a_flip_negates_x(flow_data_dir):
    batch = next(
        pipeline.eval_batches(
            TINY_MOTION_FLOW,
            data_dir=flow_data_dir,
            split="validation",
            batch_size=4,
            num_frames=8,
            crop_size=32,
            modality="flow",
            process_index=0,
            process_count=1,
        )
    )
    video = batch["video"]
    assert video.dtype == np.uint8 and video.shape == (4, 8, 32, 32, 2)
    norm = normalization.from_config({"modality": "flow"})
    assert norm.flow and norm.mean == (0.5, 0.5)
    values = np.asarray(norm.model_input(jnp.asarray(video)))
    np.testing.assert_allclose(values, flow_frames.from_levels(video), atol=1e-6)

    flips = np.array([True, False, True, False])
    flipped = np.asarray(norm.train_input({"video": jnp.asarray(video), "flip": flips}))
    mirrored = values[:, :, :, ::-1] * np.array([-1.0, 1.0], np.float32)
    np.testing.assert_allclose(flipped[flips], mirrored[flips], atol=1e-6)
    np.testing.assert_allclose(flipped[~flips], values[~flips], atol=1e-6)
    assert np.abs(values[..., 0]).max() > 0  # x moves, so the sign change is seen
    # The host-side flips (pipeline.apply_flips, video_ops.mirror_flow) are the same map.
    host = pipeline.apply_flips({"video": video, "flip": flips})
    np.testing.assert_allclose(norm.numpy(host), flipped, atol=1e-6)
    np.testing.assert_array_equal(video_ops.mirror_flow(video[0]).numpy(), host[0])


def test_flow_resize_scales_displacements_and_modality_mismatch_is_one_sentence(flow_data_dir):
    levels = flow_frames.to_levels(np.array([[[[0.5, -0.25]]]], np.float32))
    np.testing.assert_array_equal(video_ops.scale_flow(levels, 1.0, 1.0).numpy(), levels)
    halved = flow_frames.from_levels(video_ops.scale_flow(levels, 0.5, 2.0).numpy())
    np.testing.assert_allclose(halved[0, 0, 0], [0.25, -0.5], atol=1.5 / 127.5)
    with pytest.raises(UserError, match="motion_tiny_flow"):
        pipeline.eval_dataset(
            TINY_MOTION, data_dir=flow_data_dir, split="validation", batch_size=2,
            num_frames=4, crop_size=32, modality="flow", process_index=0, process_count=1,
        )  # fmt: skip
    with pytest.raises(UserError, match="modality=flow"):
        pipeline.eval_dataset(
            TINY_MOTION_FLOW, data_dir=flow_data_dir, split="validation", batch_size=2,
            num_frames=4, crop_size=32, process_index=0, process_count=1,
        )  # fmt: skip


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
        for ex in tfds.as_numpy(
            builder.as_dataset(
                split=split,
                decoders={k: tfds.decode.SkipDecoding() for k in ("flow_x", "flow_y")},
            )
        )
    }
    assert sorted(examples) == ["jumping/v0", "waving/v0"]
    for path, video_id in zip(paths, ("jumping/v0", "waving/v0")):
        frames, _ = video_files.read_video(path, fps=25.0, short_side=32)
        expected = flow_frames.to_levels(flow_frames.compute(frames))
        jpegs = np.stack([examples[video_id]["flow_x"], examples[video_id]["flow_y"]], axis=1)
        height, width = frames.shape[1:3]
        stored = video_ops.decode_flow(jpegs, [0, 0, height, width]).numpy()  # the pipeline's
        assert stored.shape == (len(frames) - 1, height, width, 2) and height == 32
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


def test_dmvr_shards_with_flow_frames_are_read_as_they_are(tmp_path):
    from PIL import Image

    from video_s3d.data import dmvr

    y, x = np.mgrid[0:24, 0:32] / 8.0
    field = np.stack([np.sin(x + y) * 0.6, np.cos(x - y) * 0.3], -1)  # smooth, in [-1, 1]
    levels = flow_frames.to_levels(np.stack([field * (1 - t / 10) for t in range(6)]))
    jpegs = []
    for frame in levels:  # DMVR's layout: x, y and an unused channel in one colour JPEG
        rgb = np.concatenate([frame, np.zeros_like(frame[..., :1])], -1)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=95, subsampling=0)
        jpegs.append(buffer.getvalue())
    records = [dmvr.make_example(jpegs, label, frames_key=dmvr.FLOW_KEY) for label in (0, 1)]
    dmvr.write_shards(records, str(tmp_path), "validation", 1)
    name = f"dmvr:{tmp_path}/validation-*?num_classes=2&modality=flow"
    batch = next(
        pipeline.eval_batches(
            name, split="validation", batch_size=2, num_frames=6, crop_size=24,
            central_fraction=1.0, modality="flow", process_index=0, process_count=1,
        )
    )  # fmt: skip
    assert batch["video"].shape == (2, 6, 24, 24, 2)
    expected = levels[:, :, 4:28]  # the centre 24x24 crop, no resize
    mean_error = np.abs(batch["video"][0].astype(int) - expected).mean()
    assert mean_error < 1.0  # colour JPEG at quality 95: 0.3 levels measured (flow_frames)
    with pytest.raises(UserError, match="modality=flow"):
        pipeline.eval_dataset(
            name.replace("&modality=flow", ""), split="validation", batch_size=2, num_frames=6,
            crop_size=24, modality="flow", process_index=0, process_count=1,
        )  # fmt: skip


def test_kinetics_and_transfer_configs_have_flow_rows():
    from experiments import kinetics400, transfer

    config = kinetics400.get_config("model=s3dg,init=scratch,modality=flow")
    assert (config.data.name, config.data.modality) == ("kinetics400/flow", "flow")
    assert "Flow" in config.recipe.name and config.data.num_frames == 64
    # ImageNet initialisation: the weights inflated into the flow network (import_weights
    # --modality=flow), in their own workdir.
    imagenet = kinetics400.get_config("model=s3dg,modality=flow")
    assert imagenet.init_from == "runs/imported/s3dg_imagenet_flow"
    assert "--modality=flow" in imagenet.init_hint and "--out=runs/imported/s3dg_imagenet_flow" in (
        imagenet.init_hint
    )
    config = transfer.get_config("dataset=hmdb51,split=2,init_from=runs/k,modality=flow")
    assert (config.data.name, config.data.modality) == ("hmdb51/split2_flow", "flow")
    smoke = kinetics400.get_config("runlocal,modality=flow,init=scratch")
    assert smoke.data.name == TINY_MOTION_FLOW
