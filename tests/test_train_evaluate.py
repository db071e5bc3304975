"""Evaluation metrics on hand-made logits: video-level averaging with masks, top-k, pairs."""

import flax.linen as nn
import jax
import numpy as np

from tests import training_testing
from video_s3d import evaluate, inputs, parallel


def _accumulate(batches, num_classes):
    acc = evaluate.VideoAccumulator(num_classes)
    for batch in batches:
        acc.add(**batch)
    return acc.merged()


def test_video_level_averages_the_views_of_each_video_and_ignores_padding():
    # 3 classes; video 0 (label 0) has two clips that disagree, averaging to class 0;
    # video 1 (label 2) has one clip; the last row of batch 2 is padding with garbage logits.
    batch_1 = dict(
        logits=np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0]]),
        labels=np.array([0, 0]),
        video_index=np.array([0, 0]),
        mask=np.array([True, True]),
    )
    batch_2 = dict(
        logits=np.array([[0.0, 1.0, 2.0], [0.0, 100.0, 0.0]]),
        labels=np.array([2, 0]),
        video_index=np.array([1, -1]),
        mask=np.array([True, False]),
    )
    merged = _accumulate([batch_1, batch_2], 3)
    np.testing.assert_array_equal(merged["video_index"], [0, 1])
    np.testing.assert_allclose(merged["logits"], [[1.5, 1.0, 0.0], [0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(merged["labels"], [0, 2])

    metrics, extras = evaluate.summarize(merged, 3, reversal_partner=None)
    # Clips: 2 of 3 real clips right (the [0,2,0] clip of video 0 is wrong).
    assert metrics["clip_top1"] == 2 / 3
    assert metrics["video_top1"] == 1.0  # averaging fixed video 0
    assert metrics["num_videos"] == 2 and metrics["num_clips"] == 3
    assert "pairwise_reversal_accuracy" not in metrics
    np.testing.assert_array_equal(extras["confusion_matrix"], [[1, 0, 0], [0, 0, 0], [0, 0, 1]])
    per_class = extras["per_class_accuracy"]
    assert per_class[0] == 1.0 and np.isnan(per_class[1]) and per_class[2] == 1.0


def test_top5_and_pairwise_reversal_accuracy():
    # 6 classes in partner pairs (0,1), (2,3); 4 and 5 have none.
    partner = [1, 0, 3, 2, -1, -1]
    logits = np.array(
        [
            [
                0.0,
                1.0,
                0.0,
                0.0,
                0.0,
                5.0,
            ],  # label 0: top-1 wrong (5), top-5 right, partner 1 > 0: wrong
            [0.0, 2.0, 0.0, 0.0, 0.0, 0.0],  # label 1: right, 1 > 0: right
            [0.0, 0.0, 4.0, 3.0, 9.0, 0.0],  # label 2: top-1 wrong, 2 > 3: right
            [6.0, 5.0, 4.0, 0.0, 3.0, 2.0],  # label 3: rank 6 -> top-5 wrong, 3 < 2: wrong
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.0],  # label 4: no partner, not counted in the pairwise
        ]
    )
    labels = np.array([0, 1, 2, 3, 4])
    np.testing.assert_array_equal(evaluate.topk_correct(logits, labels, 1), [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(evaluate.topk_correct(logits, labels, 5), [1, 1, 1, 0, 1])
    assert evaluate.pairwise_reversal_accuracy(logits, labels, partner) == 0.5
    assert evaluate.pairwise_reversal_accuracy(logits, labels, None) is None
    merged = _accumulate(
        [dict(logits=logits, labels=labels, video_index=np.arange(5), mask=np.ones(5, bool))], 6
    )
    metrics, _ = evaluate.summarize(merged, 6, partner)
    assert metrics["video_top1"] == 0.4 and metrics["video_top5"] == 0.8
    assert metrics["pairwise_reversal_accuracy"] == 0.5


def test_confusion_matrix_renders_to_an_image_and_png(tmp_path):
    cm = np.array([[3, 1], [0, 4]])
    image = evaluate.confusion_matrix_image(cm, ["left", "right"], title="t")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.min() < 128 < image.max()  # not blank
    evaluate.save_png(image, str(tmp_path / "cm.png"))
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------- one compiled eval step per run
TRACES = []  # input shapes, appended each time CountingNet is traced


class CountingNet(nn.Module):
    """The small test model, counting its traces (a Python side effect runs only at trace)."""

    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        TRACES.append(x.shape)
        return training_testing.SmallVideoNet(self.num_classes, name="net")(x, train)


def test_a_second_evaluation_reuses_the_compiled_steps():
    config = training_testing.small_config()
    config.data.eval_protocols = ("multi_clip", "all_frames")
    mesh = parallel.make_mesh(jax.devices()[:1])
    info = inputs.dataset_info(config.data)
    model = CountingNet(info.num_classes)
    clip = np.zeros((1, config.data.num_frames, config.data.crop_size, config.data.crop_size, 3))
    variables = model.init(jax.random.key(0), clip.astype(np.float32))
    TRACES.clear()
    evaluate.evaluate_variables(config, model, variables, mesh, info, is_main=False)
    first = len(TRACES)
    assert first >= 1
    # A new, equal model (as `evaluate` builds for each checkpoint): nothing traced again.
    again, _ = evaluate.evaluate_variables(
        config, CountingNet(info.num_classes), variables, mesh, info, is_main=False
    )
    assert len(TRACES) == first
    assert 0.0 <= again["video_top1"] <= 1.0
    # Another input normalisation is another program: traced afresh.
    config.data.input_mean, config.data.input_std = [0.5] * 3, [0.25] * 3
    evaluate.evaluate_variables(config, model, variables, mesh, info, is_main=False)
    assert len(TRACES) > first
