"""2D -> 3D inflation (Carreira & Zisserman 2017): start a video network from image weights.

The 2D source is the target's spec with every conv 2D (`NetworkSpec.as_2d()`; for i3d,
s3d that is i2d, i.e. Inception-v1 applied per frame). Each target variable comes from
the source variable with the same path:

  * a kt x k x k kernel (3D conv) is the 1 x k x k source kernel repeated kt times over
    time and divided by kt, so a video of one repeated frame gives the 2D activations;
  * a separable unit's spatial half ('conv', 'bn') is the 2D unit; its temporal half
    starts as the identity: 'temporal_conv' centre tap = I, bias 0, and under the
    torchvision convention 'temporal_bn' scale 1, bias 0, mean 0, var 1 - eps (so BN
    divides by exactly 1);
  * a first layer (Conv_1a) taking another number of input channels than the source's -- a
    flow network (2 channels: x, y) from RGB weights -- gets the source kernel averaged over
    its input channels, repeated for each target channel (then inflated over time as above);
    that averaging is the flow stream's ImageNet initialisation as issue 18 states it (the
    I3D release's text on it is not verified here);
  * everything else of equal shape is copied (BN, 1x1x1 convs, gates if the source has
    them, the classifier if the class counts agree);
  * gates the source lacks, and a classifier of another size, keep the target's values.

What "a boring video gives the 2D features" means here, precisely.
With `temporal_padding='edge'` (`models.create(name, n, temporal_padding="edge")`), the
padded frames copy the clip's end frames, so a clip of one repeated frame is constant in
time at every layer: every endpoint at every frame, the pre-logit features and the
logits of i3d, s3d, s3dg and s3d_torchvision equal the 2D network's on that frame (float
rounding only). Use it when fine-tuning from image weights and that property matters.

Under the default zero padding (the TF-Slim / torchvision reference) a separable unit's
temporal half starts as the identity, which reads only its centre tap and so never
sees padding; a full 3D conv (kernel repeated over time) reads kt frames, and near the
clip's ends some of them are zeros. So:
  * s3d_torchvision (separable stem and convs): exact, as with edge padding.
  * i3d, s3d (full 3D stem): equal on every frame whose temporal receptive field stays
    inside the clip; the end frames differ, so pre-logit features, a mean over all
    frames, are close but not equal.
  * s3dg: a self-gate averages over all frames, so from the first gate that sees an end
    frame (Conv_2c, after the full 3D stem) no frame is exactly equal any more.
tests/test_inflate.py checks exactly these statements.
"""

from __future__ import annotations

from typing import Any, Mapping

import flax
import jax.numpy as jnp
import numpy as np

from video_s3d.errors import UserError
from video_s3d.models.layers import BN_EPSILON


def _identity_value(path: tuple[str, ...], target_leaf) -> Any:
    """Value of a temporal-half variable that makes the temporal conv (+BN) a no-op."""
    unit, name = path[-2], path[-1]
    shape, dtype = target_leaf.shape, target_leaf.dtype
    if unit == "temporal_conv" and name == "kernel":
        kt, _, _, cin, cout = shape
        kernel = np.zeros(shape, dtype)
        kernel[kt // 2, 0, 0] = np.eye(cin, cout, dtype=dtype)
        return jnp.asarray(kernel)
    if unit == "temporal_conv" and name == "bias":
        return jnp.zeros(shape, dtype)
    if unit == "temporal_bn":
        fill = {"scale": 1.0, "bias": 0.0, "mean": 0.0, "var": 1.0 - BN_EPSILON}[name]
        return jnp.full(shape, fill, dtype)
    return None


def _match_input_channels(path: tuple[str, ...], source_leaf, target_leaf):
    """The stem kernel averaged over the source's input channels, once per target channel."""
    if (
        path[-1] == "kernel"
        and "Conv_1a" in path
        and len(target_leaf.shape) == 5
        and source_leaf.shape[-2] != target_leaf.shape[-2]
    ):
        mean = jnp.mean(jnp.asarray(source_leaf, jnp.float32), axis=-2, keepdims=True)
        return jnp.repeat(mean, target_leaf.shape[-2], axis=-2)
    return source_leaf


def _inflate_leaf(path: tuple[str, ...], source_leaf, target_leaf) -> Any:
    source_leaf = _match_input_channels(path, source_leaf, target_leaf)
    if source_leaf.shape == target_leaf.shape:
        return jnp.asarray(source_leaf, target_leaf.dtype)
    is_kernel = path[-1] == "kernel" and len(target_leaf.shape) == 5
    if is_kernel and source_leaf.shape[0] == 1 and source_leaf.shape[1:] == target_leaf.shape[1:]:
        kt = target_leaf.shape[0]
        return jnp.repeat(jnp.asarray(source_leaf, target_leaf.dtype), kt, axis=0) / kt
    if path[-2:-1] == ("Logits",):
        return None  # Another number of classes: keep the target's classifier.
    raise UserError(
        f"Cannot inflate {'/'.join(path)}: source shape {tuple(source_leaf.shape)} does not "
        f"fit target shape {tuple(target_leaf.shape)}; is the source the target's 2D twin "
        "(same width multiplier)?"
    )


def inflate_variables(source: Mapping, target: Mapping) -> dict:
    """Variables shaped like `target` (a 3D model's init) built from 2D `source` variables.

    `target` supplies the structure and the values of anything the source cannot
    (fresh gates, a classifier for another class count). Both are {'params', 'batch_stats'}
    trees as returned by `model.init`.
    """
    flat_source = flax.traverse_util.flatten_dict(flax.core.unfreeze(source))
    flat_target = flax.traverse_util.flatten_dict(flax.core.unfreeze(target))
    used = set()
    result = {}
    for path, target_leaf in flat_target.items():
        value = None
        if path in flat_source:
            used.add(path)
            value = _inflate_leaf(path, flat_source[path], target_leaf)
        elif len(path) >= 2:
            value = _identity_value(path, target_leaf)
            if value is None and "gating" not in path:
                raise UserError(
                    f"The 2D source has no variable {'/'.join(path)}; inflate from the target's "
                    "2D twin (models.create_from_spec(get_spec(name).as_2d(), ...))."
                )
        result[path] = target_leaf if value is None else value
    unused = sorted("/".join(p) for p in set(flat_source) - used)
    if unused:
        raise UserError(
            f"The 2D source has variables the target lacks ({', '.join(unused[:3])}"
            f"{', ...' if len(unused) > 3 else ''}); source and target must be the same network."
        )
    return flax.traverse_util.unflatten_dict(result)
