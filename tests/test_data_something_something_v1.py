"""Something-something v1 (the paper's): frame folders + CSV labels build into the same JPEG
records as every other builder, and its whole videos reach the all-frames protocol in order."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from video_s3d.data import pipeline
from video_s3d.data.builders import SomethingSomethingV1

CLASSES = ("Pushing something from left to right", "Pushing something from right to left")
VIDEOS = {"train": [("11", 0, 5), ("12", 1, 4)], "validation": [("21", 1, 6), ("22", 0, 3)]}


def _level(video_id: str, frame: int) -> int:
    return 30 + 25 * frame + int(video_id) % 10


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssv1")
    (root / "something-something-v1-labels.csv").write_text("\n".join(CLASSES) + "\n")
    for split, videos in VIDEOS.items():
        (root / f"something-something-v1-{split}.csv").write_text(
            "".join(f"{vid};{CLASSES[label]}\n" for vid, label, _ in videos)
        )
        for vid, _, length in videos:
            folder = root / "20bn-something-something-v1" / vid
            folder.mkdir(parents=True)
            for f in range(length):  # 100 px tall like the release; 1-based names
                Image.fromarray(np.full((100, 132, 3), _level(vid, f), np.uint8)).save(
                    folder / f"{f + 1:05d}.jpg", quality=95
                )
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    builder = SomethingSomethingV1(data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    return builder, data_dir


def test_builds_every_listed_video_with_its_class(built):
    builder, data_dir = built
    assert builder.skipped == []
    assert builder.info.features["label"].names == list(CLASSES)
    assert builder.info.splits["train"].num_examples == 2
    info = pipeline.dataset_info("something_something_v1", data_dir=data_dir)
    assert not info.flip_allowed  # left/right is part of the classes
    assert info.reversal_partner == [1, 0]


def test_whole_videos_in_order_at_short_side_256(built):
    _, data_dir = built
    rows = {}
    for batch in pipeline.all_frames_eval_dataset(
        "something_something_v1",
        data_dir=data_dir,
        split="validation",
        batch_size=2,
        crop_size=224,
        process_index=0,
        process_count=1,
    ).as_numpy_iterator():
        for row in np.nonzero(batch["mask"])[0]:
            rows[int(batch["video_index"][row])] = batch["video"][row]
    # TFDS stores examples in its own order; the validation lengths (6, 3) tell them apart.
    by_length = {len(video): video for video in rows.values()}
    assert len(rows) == 2 and set(by_length) == {6, 3}
    for vid, _, length in VIDEOS["validation"]:
        assert by_length[length].shape == (length, 224, 224, 3)
        levels = by_length[length].mean(axis=(1, 2, 3))  # uint8: normalised on the device
        np.testing.assert_allclose(levels, [_level(vid, f) for f in range(length)], atol=2.0)
