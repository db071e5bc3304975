"""The paper's test protocol: every frame of each video, once, in one pass at a centre crop.

Videos of different lengths (DMVR shards written here, each frame a flat grey level that
encodes its index) go through `pipeline.all_frames_eval_dataset` and `evaluate.run_all_frames_eval`;
every frame must arrive exactly once and in order, and each video's logits must equal a
direct `model.apply` on that whole video."""

import io

import jax
import numpy as np
import pytest
from PIL import Image

from video_s3d import evaluate, models, parallel, train_state
from video_s3d.compile_policy import CompilePolicy
from video_s3d.data import dmvr, pipeline

# Two lengths (two compiled programs each way: compiles dominate on CPU); three videos of 6
# frames leave one batch of 2 half padded.
LENGTHS = (6, 9, 6, 9, 6)
HEIGHT, WIDTH, CROP = 32, 40, 28  # centre crop 0.875 x 32 = 28: no resize
NUM_CLASSES = 5


def _grey(level: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), level, np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def _level(video: int, frame: int) -> int:
    return 20 + 10 * frame + video  # distinct per (video, frame), far apart across frames


@pytest.fixture(scope="module")
def dataset_name(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dmvr")
    records = [
        dmvr.make_example([_grey(_level(v, f)) for f in range(n)], label=v % NUM_CLASSES)
        for v, n in enumerate(LENGTHS)
    ]
    # One shard: a DMVR video's index is its position in file order.
    dmvr.write_shards(records, str(directory), "validation", num_shards=1)
    return f"dmvr:{directory}/{{split}}-*-of-*?num_classes={NUM_CLASSES}"


def _batches(name, batch_size=2):
    return list(
        pipeline.all_frames_eval_dataset(
            name,
            split="validation",
            batch_size=batch_size,
            crop_size=CROP,
            process_index=0,
            process_count=1,
        ).as_numpy_iterator()
    )


def test_every_frame_of_every_video_arrives_exactly_once_in_order(dataset_name):
    batches = _batches(dataset_name)
    seen = {}
    for batch in batches:
        mask = batch["mask"].astype(bool)
        assert np.all(batch["num_frames"][mask] == batch["video"].shape[1])  # one length each
        for row in np.nonzero(batch["mask"])[0]:
            vid = int(batch["video_index"][row])
            assert vid not in seen, f"video {vid} evaluated twice"
            frames = batch["video"][row]
            assert frames.shape == (LENGTHS[vid], CROP, CROP, 3)
            assert batch["num_frames"][row] == LENGTHS[vid]
            assert frames.dtype == np.uint8  # normalised on the device by the eval step
            seen[vid] = frames.mean(axis=(1, 2, 3))
        assert np.all(batch["video_index"][~batch["mask"]] == -1)
    assert sorted(seen) == list(range(len(LENGTHS)))
    for vid, levels in seen.items():
        expected = [_level(vid, f) for f in range(LENGTHS[vid])]
        np.testing.assert_allclose(levels, expected, atol=2.0)  # JPEG: +-1 grey level


@pytest.mark.slow
def test_logits_equal_a_direct_apply_on_the_whole_video(dataset_name):
    model = models.create("tiny_s3dg", NUM_CLASSES)
    policy = CompilePolicy.from_config()
    variables = policy.jit(lambda x: model.init(jax.random.key(0), x, train=False))(
        np.zeros((1, 6, CROP, CROP, 3), np.float32)
    )
    mesh = parallel.make_mesh(jax.devices()[:2])
    step = evaluate.make_eval_step(model, mesh, policy)
    merged, videos_per_sec, frames = evaluate.run_all_frames_eval(
        step, variables, _batches(dataset_name), mesh, NUM_CLASSES
    )
    assert frames == sum(LENGTHS)
    assert list(merged["video_index"]) == list(range(len(LENGTHS)))
    direct_apply = policy.jit(lambda v, x: model.apply(v, x, train=False))
    assert any(not batch["mask"].all() for batch in _batches(dataset_name))  # padding exercised
    for batch in _batches(dataset_name, batch_size=1):
        vid = int(batch["video_index"][0])
        # The eval step normalises uint8 on the device; the direct apply gets [-1, 1] floats.
        direct = direct_apply(variables, batch["video"][:1] * (2 / 255) - 1)
        np.testing.assert_allclose(
            merged["logits"][vid], np.asarray(direct)[0], rtol=1e-4, atol=1e-5
        )
