"""Small pure TensorFlow functions the input pipelines are assembled from.

A clip arrives as a vector of per-frame JPEG strings. Frames are chosen before anything is
decoded (`train_window`, `eval_windows`), and the spatial crop is chosen from the JPEG header
(`random_crop_window`, `eval_crop_windows`) so that `decode_and_crop` decodes only the pixels
that survive the crop. All randomness is stateless: every function that draws takes a `seed`
of shape [2], so parallel maps give the same result in any order and after a restore.
"""

from __future__ import annotations

import tensorflow as tf

from video_s3d.errors import UserError

# ---------------------------------------------------------------------------- seeds


def example_seed(seed: int, process_index: int, position: tf.Tensor) -> tf.Tensor:
    """The seed of one training example: (run seed, host) folded with its stream position."""
    base = tf.constant([seed, process_index], dtype=tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(position, tf.int64))


def sub_seed(seed: tf.Tensor, purpose: int) -> tf.Tensor:
    """An independent seed for one random decision (temporal, crop, flip) of an example."""
    return tf.random.experimental.stateless_fold_in(seed, purpose)


# ---------------------------------------------------------------------------- sample

# What a video shorter than the window gives (`config.data.short_clip`); never a jump back.
REPEAT_LAST = "repeat_last"  # the video's frames at the stride, then its last frame repeated
SPREAD = "spread"  # TSN-style: the window's T indices spread over the whole video
SHORT_CLIP_MODES = (REPEAT_LAST, SPREAD)


def check_short_clip(short_clip: str) -> None:
    if short_clip not in SHORT_CLIP_MODES:
        raise UserError(
            f"short_clip must be one of {SHORT_CLIP_MODES}, not {short_clip!r}: set "
            f"config.data.short_clip (or leave it None for the dataset's default)."
        )


def _windows(
    starts: tf.Tensor,
    num_available: tf.Tensor,
    num_frames: int,
    stride: int,
    short_clip: str,
    jitter: tf.Tensor | None = None,
) -> tf.Tensor:
    """int32 [..., T]: windows of T frames `stride` apart starting at `starts`; always monotone.

    A window that fits is the frames `start, start + stride, ...`. A video shorter than the
    window (span (T - 1) * stride + 1) instead gives, by `short_clip`: REPEAT_LAST, frames
    0, stride, ... up to its end, then its last frame again; SPREAD, one index in each of T
    equal segments of the whole video (segment centres, or `jitter` [T] in [0, 1) of the way
    into each segment: TSN's training sampling). Either way the indices never decrease.
    """
    check_short_clip(short_clip)
    num_available = tf.maximum(tf.cast(num_available, tf.int32), 1)
    offsets = tf.range(num_frames, dtype=tf.int32) * stride
    fits = num_available >= (num_frames - 1) * stride + 1
    windows = starts[..., None] + offsets
    if short_clip == REPEAT_LAST:
        short = tf.minimum(offsets, num_available - 1)
    else:
        where = 0.5 if jitter is None else jitter
        position = (tf.range(num_frames, dtype=tf.float32) + where) / num_frames
        short = tf.minimum(
            tf.cast(position * tf.cast(num_available, tf.float32), tf.int32), num_available - 1
        )
    return tf.where(fits, windows, tf.broadcast_to(short, tf.shape(windows)))


def train_window(
    num_available: tf.Tensor,
    num_frames: int,
    stride: int,
    seed: tf.Tensor,
    short_clip: str = REPEAT_LAST,
) -> tf.Tensor:
    """int32 [T]: a uniformly random window of T frames `stride` apart.

    Videos shorter than the window follow `short_clip` (see `_windows`); SPREAD then draws
    one random frame per segment.
    """
    num_available = tf.cast(num_available, tf.int32)
    span = (num_frames - 1) * stride + 1
    last_start = tf.maximum(num_available - span, 0)
    start_seed, jitter_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    start = tf.random.stateless_uniform(
        [], start_seed, minval=0, maxval=last_start + 1, dtype=tf.int32
    )
    jitter = tf.random.stateless_uniform([num_frames], jitter_seed)
    return _windows(start, num_available, num_frames, stride, short_clip, jitter)


def eval_windows(
    num_available: tf.Tensor,
    num_frames: int,
    stride: int,
    num_clips: int | None,
    short_clip: str = REPEAT_LAST,
) -> tf.Tensor:
    """int32 [N, T]: N windows spaced uniformly from the first to the last frame.

    `num_clips` 0 or None: one window from frame 0 holding every frame (at `stride`), padded
    by `short_clip` or cut to `num_frames`; pass num_frames >= the longest video / stride to
    really see all frames. Videos shorter than the window follow `short_clip` (`_windows`).
    """
    num_available = tf.cast(num_available, tf.int32)
    if not num_clips:
        return _windows(tf.zeros([1], tf.int32), num_available, num_frames, stride, short_clip)
    span = (num_frames - 1) * stride + 1
    last_start = tf.maximum(num_available - span, 0)
    fractions = tf.linspace(0.0, 1.0, num_clips) if num_clips > 1 else tf.constant([0.5])
    starts = tf.cast(tf.round(fractions * tf.cast(last_start, tf.float32)), tf.int32)
    return _windows(starts, num_available, num_frames, stride, short_clip)


def gather_frames(jpegs: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    return tf.gather(jpegs, indices)


# ---------------------------------------------------------------------------- crop windows


def frame_shape(jpeg: tf.Tensor) -> tf.Tensor:
    """int32 [2]: (height, width) read from the JPEG header, nothing decoded."""
    return tf.image.extract_jpeg_shape(jpeg)[:2]


def random_crop_window(
    image_hw: tf.Tensor, seed: tf.Tensor, area_range=(0.4, 1.0), aspect_range=(3 / 4, 4 / 3)
) -> tf.Tensor:
    """int32 [4] (y, x, height, width): one crop with scale and aspect jitter."""
    image_shape = tf.concat([tf.cast(image_hw, tf.int32), [3]], axis=0)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=aspect_range,
        area_range=area_range,
        max_attempts=20,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def fixed_crop_window(image_hw: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    """int32 [4] (y, x, height, width): a size x size square at a uniformly random position.

    The paper's training crop (random 224x224 of 256-short-side frames), decoded without any
    resize. A frame whose short side is below `size` gives instead the largest square that fits
    (random position along the long side), which `resize` then scales up to `size`.
    """
    height, width = tf.unstack(tf.cast(image_hw, tf.int32))
    side = tf.minimum(tf.minimum(height, width), size)
    top_left = tf.random.stateless_uniform([2], seed, minval=0, maxval=2**30, dtype=tf.int32)
    y = top_left[0] % (height - side + 1)
    x = top_left[1] % (width - side + 1)
    return tf.stack([y, x, side, side])


def eval_crop_windows(image_hw: tf.Tensor, central_fraction: float, num_crops: int) -> tf.Tensor:
    """int32 [num_crops, 4]: squares of side `central_fraction` x the short side.

    One crop: the centre square. Three: start, centre and end of the long side (left, centre,
    right for landscape frames). Later resized to the crop size: with 256-short-side frames and
    fraction 0.875 that is the paper's 224 centre crop without any resizing.
    """
    if num_crops not in (1, 3):
        raise UserError(f"num_crops must be 1 or 3, not {num_crops}.")
    height, width = tf.unstack(tf.cast(image_hw, tf.int32))
    short = tf.minimum(height, width)
    side = tf.clip_by_value(
        tf.cast(tf.round(tf.cast(short, tf.float32) * central_fraction), tf.int32), 1, short
    )
    centre_y, centre_x = (height - side) // 2, (width - side) // 2
    if num_crops == 1:
        return tf.stack([[centre_y, centre_x, side, side]])
    landscape = width >= height
    ys = tf.where(landscape, tf.stack([centre_y] * 3), tf.stack([0, centre_y, height - side]))
    xs = tf.where(landscape, tf.stack([0, centre_x, width - side]), tf.stack([centre_x] * 3))
    sides = tf.fill([3], side)
    return tf.stack([ys, xs, sides, sides], axis=1)


# ---------------------------------------------------------------------------- decode

# libjpeg-turbo decodes a crop in whole iMCU columns (8 or 16 pixels wide); a crop whose left
# edge is on the 16-pixel grid (a multiple of every iMCU width) decodes measurably faster
# (fused/whole-frame decode 1.01-1.17x -> 1.22-1.25x on 256x340 and 256x455 frames, one thread).
_DECODE_GRID = 16


def decode_and_crop(
    jpegs: tf.Tensor, window: tf.Tensor, channels: int = 3, dct_method: str = ""
) -> tf.Tensor:
    """uint8 [T, h, w, 3]: every frame decoded only inside the same crop window (fused).

    Decodes from the 16-pixel grid line left of the window, one column past each side, then
    slices the window out: the extra column gives the chroma upsampler the neighbour it
    interpolates from, so the result equals `decode_then_crop` exactly (without it the edge
    columns of 4:2:0 frames differ by up to ~50 grey levels).
    """
    y, x, height, width = tf.unstack(window)
    frame_width = frame_shape(jpegs[0])[1]
    left = tf.maximum(x - 1, 0) // _DECODE_GRID * _DECODE_GRID
    right = tf.minimum(x + width + 1, frame_width)
    decoded = tf.stack([y, left, height, right - left])
    frames = tf.map_fn(
        lambda jpeg: tf.image.decode_and_crop_jpeg(
            jpeg, decoded, channels=channels, dct_method=dct_method
        ),
        jpegs,
        fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8),
    )
    return frames[:, :, x - left : x - left + width]


def decode_then_crop(
    jpegs: tf.Tensor, window: tf.Tensor, channels: int = 3, dct_method: str = ""
) -> tf.Tensor:
    """Same result as `decode_and_crop`, decoding whole frames first (the baseline DMVR way)."""
    frames = tf.map_fn(
        lambda jpeg: tf.image.decode_jpeg(jpeg, channels=channels, dct_method=dct_method),
        jpegs,
        fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8),
    )
    return frames[:, window[0] : window[0] + window[2], window[1] : window[1] + window[3]]


def first_jpeg(jpegs: tf.Tensor) -> tf.Tensor:
    """The first JPEG of a video's frames, RGB [N] or flow (x, y) pairs [N, 2]."""
    return tf.reshape(jpegs, [-1])[0]


def decode_flow(jpegs: tf.Tensor, window: tf.Tensor, fused: bool = True) -> tf.Tensor:
    """uint8 [T, h, w, 2] flow levels from a flow video's frames, cropped to `window`.

    string [T, 2]: (x, y) grayscale JPEG pairs (our flow configs, builders/flow_frames.py);
    string [T]: one 3-channel JPEG a frame holding x, y and an unused channel (DMVR's
    `flow/encoded`, see DMVR modalities.add_image(is_flow=True)).

    With libjpeg's accurate integer IDCT: TF's default fast one adds error (on the tiny
    synthetic flow, 0.27 grey levels mean from the stored levels against 0.077).
    """
    jpegs = tf.convert_to_tensor(jpegs)
    decode = decode_and_crop if fused else decode_then_crop
    accurate = "INTEGER_ACCURATE"
    if jpegs.shape.rank == 2:
        return tf.concat(
            [decode(jpegs[:, i], window, channels=1, dct_method=accurate) for i in (0, 1)],
            axis=-1,
        )
    return decode(jpegs, window, channels=3, dct_method=accurate)[..., :2]


def scale_flow(levels: tf.Tensor, scale_x: tf.Tensor, scale_y: tf.Tensor) -> tf.Tensor:
    """uint8 flow levels (f + 1) * 127.5 with f multiplied by (scale_x, scale_y), clipped to
    [-1, 1] and rounded: a frame resized by those factors moves that many more pixels. Exact
    identity at scale 1."""
    scale = tf.cast(tf.stack([scale_x, scale_y]), tf.float32)
    centred = tf.cast(levels, tf.float32) - 127.5
    return tf.cast(tf.clip_by_value(tf.round(centred * scale + 127.5), 0.0, 255.0), tf.uint8)


def mirror_flow(levels: tf.Tensor) -> tf.Tensor:
    """uint8 flow levels mirrored left-right: the field flips and x changes sign (255 - v is
    exactly -f on the (f + 1) * 127.5 scale)."""
    mirrored = mirror(levels)
    return tf.concat([255 - mirrored[..., :1], mirrored[..., 1:]], axis=-1)


# ---------------------------------------------------------------------------- augment


def resize(frames: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 [T, size, size, C] from uint8 frames; frames already size x size pass untouched.

    Bilinear; antialiased only when shrinking by more than 1.5x: near-1 factors (the usual
    crop of a 256-short-side frame to 224) look the same without it, and it costs twice as much
    as the whole rest of the pipeline. The result is rounded back to uint8 so batches leave the
    host at a quarter of float32's bytes (at most half a grey level from the float resize).
    """
    height, width = tf.shape(frames)[1], tf.shape(frames)[2]
    same = tf.logical_and(height == size, width == size)
    shrinks_a_lot = tf.minimum(height, width) * 2 > size * 3

    def resized(antialias):
        return lambda: tf.cast(
            tf.image.resize(frames, [size, size], antialias=antialias) + 0.5, tf.uint8
        )

    return tf.case(
        [
            (same, lambda: tf.reshape(frames, [-1, size, size, frames.shape[-1] or 3])),
            (shrinks_a_lot, resized(True)),
        ],
        default=resized(False),
    )


def mirror(frames: tf.Tensor) -> tf.Tensor:
    """[..., H, W, C] mirrored left-right.

    Reverses a [rows, W, C] view: TF's reverse kernel is about 3x faster on that rank-3 view
    than on the same data as [T, H, W, C] (measured on one CPU thread).
    """
    shape = tf.shape(frames)
    rows = tf.reshape(frames, [-1, shape[-2], shape[-1]])
    return tf.reshape(tf.reverse(rows, axis=[1]), shape)


def flip_draw(seed: tf.Tensor) -> tf.Tensor:
    """bool []: whether a clip is mirrored (probability 1/2)."""
    return tf.random.stateless_uniform([], seed) < 0.5


def random_flip(frames: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirror all frames left-right together when `flip_draw(seed)`, on the host.

    The trainer instead mirrors on the device (pipeline `flip_on_device`): on one CPU thread the
    host mirror cost a quarter of the paper crop's decode (data/bench.py). Meant for the uint8 crop
    before `resize`: a half-pixel-centred bilinear resize commutes with mirroring.
    """
    return tf.cond(flip_draw(seed), lambda: mirror(frames), lambda: frames)


def reverse_time(frames: tf.Tensor) -> tf.Tensor:
    return tf.reverse(frames, axis=[0])


# ---------------------------------------------------------------------------- normalise


def normalise(frames: tf.Tensor) -> tf.Tensor:
    """0..255 -> [-1, 1] float32 on the host. The pipelines no longer call it: batches leave as
    uint8 and `video_s3d.normalization` maps them on the device; kept as the reference the
    uint8 path is tested against."""
    return tf.cast(frames, tf.float32) * (2.0 / 255.0) - 1.0
