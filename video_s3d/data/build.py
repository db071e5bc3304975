r"""Builds a dataset from the command line, with progress and a summary of skipped videos.

    python -m video_s3d.data.build --dataset=synthetic_motion/motion
    python -m video_s3d.data.build --dataset=hmdb51/split1 --manual_dir=/data/hmdb51 \
        [--data_dir=~/tensorflow_datasets]
    python -m video_s3d.data.build --dataset=jhmdb/split1 --manual_dir=/data/jhmdb  # detection
    # Scale out with Apache Beam (pip install apache-beam first; any Beam runner works):
    python -m video_s3d.data.build --dataset=kinetics400 --manual_dir=/data/k400 \
        --beam_pipeline_options="runner=DirectRunner,direct_num_workers=16,direct_running_mode=multi_processing"

The same builders work with TFDS's own CLI:
    tfds build hmdb51 --imports=video_s3d.data.builders --manual_dir=/data/hmdb51
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from video_s3d import arguments
from video_s3d.errors import UserError, UserFileError


def build(
    dataset: str,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    beam_pipeline_options: str | None = None,
) -> str:
    """Builds `dataset` (if not built yet) and returns the summary printed by the CLI."""
    from video_s3d.data import sources
    from video_s3d.data.builders import manual_video

    source = sources.get(dataset, data_dir)
    if isinstance(source, sources.DmvrSource):
        raise UserError("DMVR shards are read as they are: there is nothing to build.")
    builder = source.builder
    if source.is_built():
        return f"{dataset} is already built in {builder.data_dir}."
    if manual_dir is not None and not os.path.isdir(manual_dir):
        raise UserFileError(
            f"--manual_dir {manual_dir} does not exist: point it at the folder "
            f"with the downloaded videos and annotation files."
        )
    beam_options = None
    if beam_pipeline_options:
        import tensorflow_datasets as tfds

        try:
            beam = tfds.core.lazy_imports.apache_beam
        except ImportError as error:
            raise UserError(
                "--beam_pipeline_options needs Apache Beam, which is not installed here: "
                "pip install apache-beam, or leave the option out to build in this process."
            ) from error
        beam_options = beam.options.pipeline_options.PipelineOptions(
            flags=[f"--{option}" for option in beam_pipeline_options.split(",") if option]
        )
    started = time.time()
    source.build(manual_dir=manual_dir, beam_options=beam_options)
    lines = [f"Built {dataset} in {time.time() - started:.0f} s into {builder.data_dir}:"]
    for split, info in sorted(builder.info.splits.items()):
        lines.append(f"  {split}: {info.num_examples} videos")
    skipped = getattr(builder, "skipped", None)
    if skipped is not None:
        if beam_options is not None:
            lines.append(
                "Skipped videos: see the Beam counter video_s3d/skipped_videos and the worker logs."
            )
        else:
            lines.append(manual_video.skipped_summary(skipped))
            report = os.path.join(builder.data_dir, "skipped_videos.json")
            with open(report, "w") as f:
                json.dump([dict(split=s, video_id=v, reason=r) for s, v, r in skipped], f, indent=1)
            lines.append(f"(list written to {report})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.parser("video_s3d.data.build", __doc__)
    parser.add_argument(
        "--dataset",
        required=True,
        help="dataset name, e.g. synthetic_motion/motion, kinetics400, hmdb51/split2, ucf101, "
        "something_something_v2, jhmdb/split1, ucf101_24, video_folder/<name> (your own videos)",
    )
    parser.add_argument("--data_dir", help="TFDS data dir (default ~/tensorflow_datasets)")
    parser.add_argument(
        "--manual_dir",
        help="folder with the downloaded videos and annotation files (real datasets only)",
    )
    parser.add_argument(
        "--beam_pipeline_options",
        help="comma-separated Beam pipeline options; given, the build runs on Apache Beam",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(build(args.dataset, args.data_dir, args.manual_dir, args.beam_pipeline_options))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
