"""TFDS builders; importing this package registers them with TFDS (`tfds.builder(name)`)."""
from video_s3d.data.builders.synthetic_motion import SyntheticMotion, SyntheticMotionConfig
