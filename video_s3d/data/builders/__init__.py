"""TFDS builders; importing this package registers them with TFDS (`tfds.builder(name)`,
`tfds build NAME --imports=video_s3d.data.builders`)."""

from video_s3d.data.builders.hmdb51 import Hmdb51
from video_s3d.data.builders.jhmdb import Jhmdb
from video_s3d.data.builders.kinetics import Kinetics400, Kinetics600, Kinetics700
from video_s3d.data.builders.something_something_v1 import SomethingSomethingV1
from video_s3d.data.builders.something_something_v2 import SomethingSomethingV2
from video_s3d.data.builders.synthetic_detection import SyntheticDetection
from video_s3d.data.builders.synthetic_motion import SyntheticMotion, SyntheticMotionConfig
from video_s3d.data.builders.ucf101 import Ucf101Manual
from video_s3d.data.builders.ucf101_24 import Ucf10124
from video_s3d.data.builders.video_folder import VideoFolder
