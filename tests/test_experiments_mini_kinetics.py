"""experiments/mini_kinetics.py: a class-subset manual dir the Kinetics builder reads as is."""

import csv
import re

from experiments import mini_kinetics
from video_s3d.data.builders import kinetics

CLASSES = ("abseiling", "air drumming", "archery", "baking cookies")


def _kinetics_dir(root):
    """Kinetics-400-style annotations for 4 classes x 3 clips, and the clip files (empty)."""
    (root / "annotations").mkdir(parents=True)
    (root / "clips" / "train").mkdir(parents=True)
    for split, csv_name, per_class in (("train", "train.csv", 2), ("val", "validate.csv", 1)):
        with open(root / "annotations" / csv_name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            for c, label in enumerate(CLASSES):
                for i in range(per_class):
                    ytid = f"{split[0]}{c}{i}xxxxxxxx"
                    writer.writerow([label, ytid, 10, 20, split])
                    (root / "clips" / "train" / f"{ytid}_000010_000020.mp4").write_bytes(b"")
    return root


def test_subset_keeps_the_chosen_classes_and_the_builder_reads_it(tmp_path):
    source = _kinetics_dir(tmp_path / "k400")
    out = tmp_path / "mini"
    mini_kinetics.main(
        [
            f"--train_csv={source}/annotations/train.csv",
            f"--val_csv={source}/annotations/validate.csv",
            f"--video={source}",
            "--classes=archery,air drumming",
            f"--out={out}",
        ]
    )
    builder = kinetics.Kinetics400(data_dir=str(tmp_path / "tfds"))
    class_names, splits = builder.list_videos(str(out))
    assert class_names == ["air drumming", "archery"]
    assert [len(splits["train"]), len(splits["validation"])] == [4, 2]
    assert all(item.path and "mini" in item.path for items in splits.values() for item in items)


def test_classes_can_come_from_the_id_lists(tmp_path):
    source = _kinetics_dir(tmp_path / "k400")
    (tmp_path / "train_ids.txt").write_text("t00xxxxxxxx\nt30xxxxxxxx\n")
    (tmp_path / "val_ids.txt").write_text("v30xxxxxxxx\n")
    mini_kinetics.main(
        [
            f"--train_csv={source}/annotations/train.csv",
            f"--val_csv={source}/annotations/validate.csv",
            f"--video={source}",
            f"--train_ids={tmp_path / 'train_ids.txt'}",
            f"--val_ids={tmp_path / 'val_ids.txt'}",
            f"--out={tmp_path / 'mini'}",
        ]
    )
    with open(tmp_path / "mini" / "annotations" / "train.csv") as f:
        train = [(r["label"], r["youtube_id"]) for r in csv.DictReader(f)]
    with open(tmp_path / "mini" / "annotations" / "validate.csv") as f:
        val = [r["youtube_id"] for r in csv.DictReader(f)]
    assert train == [("abseiling", "t00xxxxxxxx"), ("baking cookies", "t30xxxxxxxx")]
    assert val == ["v30xxxxxxxx"]


def test_unknown_class_name_says_what_to_do(tmp_path, capsys):
    source = _kinetics_dir(tmp_path / "k400")
    status = mini_kinetics.main(
        [
            f"--train_csv={source}/annotations/train.csv",
            f"--val_csv={source}/annotations/validate.csv",
            f"--video={source}",
            "--classes=archeryy",
            f"--out={tmp_path / 'mini'}",
        ]
    )
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: 1 class names are not in .*train\.csv", lines[0])
    assert "e.g. 'archeryy'" in lines[0]
