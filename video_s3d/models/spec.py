"""The design space as data: one `LayerSpec` per conv layer, one `NetworkSpec` per model.

Every model of the paper is the same Inception-v1 graph (see REFERENCE.md's layer table);
a spec only says, per layer, which conv kind it uses, its temporal kernel and whether
its outputs are self-gated, plus network-wide width, BN convention, padding (amounts,
and the fill of padded frames) and dropout.
"""

from __future__ import annotations

import dataclasses

from video_s3d.errors import UserError
from video_s3d.models.layers import (
    BN_CONVENTIONS,
    CONV_KINDS,
    PADDING_MODES,
    TEMPORAL_PADDINGS,
    kernel_initializer,
)

# The ten layers whose conv kind the design space varies, bottom to top. The stem
# (Conv_1a) has its own spec; Conv_2b and every 1x1x1 conv are kind-agnostic.
LAYER_NAMES = (
    "Conv_2c",
    "Mixed_3b",
    "Mixed_3c",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "Mixed_5b",
    "Mixed_5c",
)

# Inception branch widths at width 1: B0, B1 reduce, B1, B2 reduce, B2, B3.
INCEPTION_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """How one layer convolves: kind '2d' | '3d' | 'separable', temporal kernel, gating."""

    kind: str = "3d"
    temporal_kernel: int = 3
    gating: bool = False

    def __post_init__(self):
        if self.kind not in CONV_KINDS:
            raise UserError(f"Unknown conv kind {self.kind!r}; use one of {CONV_KINDS}.")
        if self.kind == "2d" and self.temporal_kernel != 1:
            raise UserError(f"A '2d' layer has temporal kernel 1, got {self.temporal_kernel}.")
        if self.temporal_kernel < 1:
            raise UserError(f"Temporal kernel must be >= 1, got {self.temporal_kernel}.")

    def short(self) -> str:
        """Compact label such as '3d7', 'sep3+g', '2d'."""
        kind = {"2d": "2d", "3d": "3d", "separable": "sep"}[self.kind]
        kt = "" if self.kind == "2d" else str(self.temporal_kernel)
        return kind + kt + ("+g" if self.gating else "")


TWO_D = LayerSpec("2d", 1)


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """A whole network: stem (Conv_1a, 7x7 spatial, stride 2) and the ten `LAYER_NAMES`.

    width_multiplier/min_channels scale every conv: channels = max(min_channels,
    int(c * width_multiplier)), as TF-Slim's depth_multiplier/min_depth do.
    """

    stem: LayerSpec
    layers: tuple[LayerSpec, ...]
    width_multiplier: float = 1.0
    min_channels: int = 8
    convention: str = "tf_slim"
    padding: str = "same"
    dropout_rate: float = 0.2
    temporal_padding: str = "zero"  # 'edge': exact 2D -> 3D inflation (layers.py)
    # Conv kernels' initialiser (layers.KERNEL_INITS): 'tf_slim' (stddev 0.01, the reference),
    # 'he' (fan-in scaled, for training from scratch) or 'he_centre' (He at a 3D kernel's
    # centre tap, zeros elsewhere: each 3D conv starts per-frame; the synthetic study's).
    kernel_init: str = "tf_slim"

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if len(self.layers) != len(LAYER_NAMES):
            raise UserError(
                f"A NetworkSpec needs {len(LAYER_NAMES)} layer specs ({', '.join(LAYER_NAMES)}), "
                f"got {len(self.layers)}."
            )
        if self.stem.gating:
            raise UserError("The stem (Conv_1a) cannot be gated; set gating=False on it.")
        if not self.width_multiplier > 0:
            raise UserError(f"width_multiplier must be > 0, got {self.width_multiplier}.")
        if self.min_channels < 1:
            raise UserError(f"min_channels must be >= 1, got {self.min_channels}.")
        if self.convention not in BN_CONVENTIONS:
            raise UserError(f"Unknown convention {self.convention!r}; use one of {BN_CONVENTIONS}.")
        if self.padding not in PADDING_MODES:
            raise UserError(f"Unknown padding {self.padding!r}; use one of {PADDING_MODES}.")
        if self.temporal_padding not in TEMPORAL_PADDINGS:
            raise UserError(
                f"Unknown temporal_padding {self.temporal_padding!r}; use one of {TEMPORAL_PADDINGS}."
            )
        kernel_initializer(self.kernel_init)  # a UserError naming the choices
        if not 0.0 <= self.dropout_rate < 1.0:
            raise UserError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}.")

    def channels(self, width: int) -> int:
        return max(self.min_channels, int(width * self.width_multiplier))

    def layer(self, name: str) -> LayerSpec:
        return self.layers[LAYER_NAMES.index(name)]

    def replace(self, **changes) -> "NetworkSpec":
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line naming each layer's kind, e.g. 'Conv_1a=3d7 Conv_2c=sep3+g ...'."""
        parts = [f"Conv_1a={self.stem.short()}"]
        parts += [f"{n}={s.short()}" for n, s in zip(LAYER_NAMES, self.layers)]
        return " ".join(parts)

    def as_2d(self) -> "NetworkSpec":
        """The same network with every conv 2D (gating, width, convention kept): the
        source network for 2D -> 3D inflation."""
        stem = TWO_D
        layers = tuple(dataclasses.replace(l, kind="2d", temporal_kernel=1) for l in self.layers)
        return self.replace(stem=stem, layers=layers)
