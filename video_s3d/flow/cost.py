"""The work of computing TV-L1 flow (video_s3d.flow.tvl1) for one frame pair, counted by XLA.

TV-L1 iterates until it converges, within bounds: at each pyramid level `warps` warps, each of
up to `outer_iterations` x (median filter + up to `inner_iterations` inner steps). XLA's cost
analysis counts a loop's body once, whatever its trip count, so the whole program's count says
nothing of the iterations. Here each loop body of tvl1.py (`_linearise`, `_median_step`,
`_inner_step`, and the level set-up and resizes outside the loops) is lowered on its own at its
level's shape, XLA's cost analysis gives its flops, and each is multiplied by its bound: the
worst case, a pair that never meets the stopping tolerance. A pair that converges early costs
less, so the count is an upper bound, and it grows linearly with `warps`, `outer_iterations`
and `inner_iterations` (the inner steps are 65% of it at OpenCV's defaults on 224x224, the
rest is mostly the median filter, a sort of 25 values a pixel). With every body counted once,
the sum is XLA's count of the whole program to within the loop conditions (10 flops a level,
tests/test_flow_cost.py), so no part of the program is left out.

The count is of the lowered program (before XLA's rewrites), as video_s3d.cost's `xla_gmacs`
counts the networks: it does not depend on the backend, and it decomposes exactly. The
compiled program's count does neither: the CPU compiler's rewrites count 2.8x the lowered
flops for an inner step, and its whole-program count exceeds the sum of its compiled bodies
by 34-52% (measured at 32x32 and 32x40 with three settings).

Units: flops as XLA counts them (a multiply-add is 2); `pair_gmacs` halves them to the
multiply-add unit of video_s3d.cost (its `xla_gmacs` convention), so flow and network costs
add. Measured: 9.71 G multiply-adds per 224x224 pair at OpenCV's defaults (621 G for the 64
flow fields of a 64x224x224 clip), 17.3 G per 256x341 pair.
"""

from __future__ import annotations

import dataclasses
import functools

from video_s3d.flow.tvl1 import TVL1Params


@dataclasses.dataclass(frozen=True)
class PairCost:
    """XLA flops of TV-L1 on one [height, width] frame pair (batch of one)."""

    height: int
    width: int
    params: TVL1Params
    worst_case_flops: float  # every loop at its bound
    bodies_once_flops: float  # every loop body once: XLA's count of the whole program
    inner_flops: float  # of the worst case, in inner steps

    @property
    def worst_case_gmacs(self) -> float:
        return self.worst_case_flops / 2e9


def _flops(fn, *shapes) -> float:
    """XLA's flops of `fn` on float32 arguments of these shapes (arguments, not constants,
    so no part of a body can be folded away)."""
    import jax
    import jax.numpy as jnp

    from video_s3d import cost

    args = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
    return cost.xla_flops(fn, *args)


def _level_flops(height: int, width: int, params: TVL1Params) -> dict[str, float]:
    """Flops of each loop body of tvl1._one_scale at one level, batch of one."""
    from video_s3d.flow import tvl1

    image = (1, height, width)
    epsilon = tvl1._scaled_epsilon(height, width, params)  # pylint: disable=protected-access

    def median(error, u1, u2):
        _, (u1, u2), _ = tvl1._median_step(params, epsilon, (0, (u1, u2), error))
        return u1, u2

    def inner(error, i1wx, i1wy, grad, rho_c, u1, u2, p11, p12, p21, p22):
        carry = (0, (u1, u2, p11, p12, p21, p22), error)
        return tvl1._inner_step((i1wx, i1wy, grad, rho_c), params, epsilon, carry)

    return {
        "level": _flops(tvl1._level_images, image),
        "warp": _flops(tvl1._linearise, image, image + (3,), image, image),
        "median": _flops(median, (1,), image, image) if params.median_filtering > 1 else 0.0,
        "inner": _flops(inner, (1,), *[image] * 10),
    }


def _resize_flops(source: tuple[int, int], target: tuple[int, int], inv_scale) -> float:
    from video_s3d.flow import tvl1

    return _flops(
        lambda x: tvl1._resize(x, target, inv_scale),  # pylint: disable=protected-access
        (1,) + source,
    )


@functools.lru_cache(maxsize=None)
def pair_cost(height: int, width: int, params: TVL1Params = TVL1Params()) -> PairCost:
    """TV-L1's flops on one frame pair of this size with these settings (see the module doc);
    lowers each loop body once per pyramid level (seconds), remembered per size."""
    from video_s3d.flow import tvl1

    shapes = tvl1.pyramid_shapes(height, width, params)
    step = (params.scale_step, params.scale_step)
    worst = once = inner = 0.0
    for level, shape in enumerate(shapes):
        body = _level_flops(*shape, params)
        inner_steps = params.warps * params.outer_iterations * params.inner_iterations
        inner += inner_steps * body["inner"]
        worst += (
            body["level"]
            + params.warps * (body["warp"] + params.outer_iterations * body["median"])
            + inner_steps * body["inner"]
        )
        once += sum(body.values())
        # tvl1_flow's resizes: both images down to this level; the flow up from it (two
        # channels, then divided by scale_step: one flop per element each).
        if level > 0:
            extra = 2 * _resize_flops(shapes[level - 1], shape, step)
            finer = shapes[level - 1]
            inv = (finer[0] / shape[0], finer[1] / shape[1])
            extra += 2 * (_resize_flops(shape, finer, inv) + finer[0] * finer[1])
            worst, once = worst + extra, once + extra
    return PairCost(height, width, params, worst, once, inner)


def pair_gmacs(height: int, width: int, params: TVL1Params = TVL1Params()) -> float:
    """Worst-case G multiply-adds (XLA flops / 2) of TV-L1 on one frame pair."""
    return pair_cost(height, width, params).worst_case_gmacs


def clip_gmacs(num_frames: int, size: int, params: TVL1Params = TVL1Params()) -> float:
    """Worst-case G multiply-adds of the flow input of one clip: `num_frames` flow fields at
    size x size, one TV-L1 pair each (frames shared by overlapping clips of a video are not
    discounted; grayscale conversion and rescaling, a few flops a pixel, are not counted)."""
    return num_frames * pair_gmacs(size, size, params)
