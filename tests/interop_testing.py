"""Helpers shared by the weight-import tests and their fixture scripts (not a test module).

Needs only numpy: the fixture scripts import it from a venv with torch, the tests from
one without.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import pickle
import zipfile

import numpy as np

# torchvision S3D golden fixture: weights and input are drawn from these seeds.
S3D_SEED = 2024
S3D_INPUT_SHAPE = (1, 3, 13, 209, 209)  # torch layout N C T H W; the smallest torchvision accepts
GOOGLENET_SEED = 2025
GOOGLENET_INPUT_SHAPE = (1, 3, 223, 223)  # 16k - 1: SAME padding samples torchvision's grid


def seeded_state_dict(entries, seed: int, signed_bn_scale: bool = False) -> dict[str, np.ndarray]:
    """Values for [(name, shape, dtype str), ...] (a torch state dict's layout) that keep
    activations O(1) through a deep conv+BN net: He-scaled conv / linear weights, BN
    statistics spread around 0 / 1 (BN scales of either sign if `signed_bn_scale`).
    Same seed and entries -> same values on every machine."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape, dtype in entries:
        shape = tuple(shape)
        leaf = name.rsplit(".", 1)[-1]
        if dtype == "torch.int64":  # num_batches_tracked
            values[name] = np.asarray(rng.integers(0, 1000), np.int64).reshape(shape)
            continue
        if leaf == "weight" and len(shape) >= 2:  # conv [out, in, k...] or linear [out, in]
            value = rng.normal(size=shape) * (2.0 / math.prod(shape[1:])) ** 0.5
        elif leaf == "weight":
            value = rng.uniform(0.5, 1.5, size=shape)
            if signed_bn_scale:
                value *= rng.choice([-1.0, 1.0], size=shape)
        elif leaf == "running_mean":
            value = 0.1 * rng.normal(size=shape)
        elif leaf == "running_var":
            value = rng.uniform(0.5, 1.5, size=shape)
        else:  # biases
            value = 0.1 * rng.normal(size=shape)
        values[name] = value.astype(np.float32)
    return values


def seeded_input(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape).astype(np.float32)


# ------------------------------------------------------------- a torch.save zip writer
@dataclasses.dataclass
class StridedView:
    """A tensor that is a view into a shared flat `storage` (offset / size / stride in
    elements), as torch.save records a slice or transpose."""

    storage: np.ndarray
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _Global:
    """Pickles as GLOBAL module.name without importing it (torch is not installed)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable
        raise NotImplementedError


_STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}


class _Tensor:
    def __init__(self, storage_ref, offset, size, stride):
        self.args = (
            storage_ref,
            offset,
            tuple(size),
            tuple(stride),
            False,
            collections.OrderedDict(),
        )

    def __reduce__(self):
        return _Global("torch._utils", "_rebuild_tensor_v2"), self.args


class _StorageRef:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _TorchPickler(pickle._Pickler):  # the pure-Python pickler lets us add a dispatch entry
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_global_marker(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = _save_global_marker

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            name = _STORAGE_NAMES[obj.array.dtype]
            return ("storage", _Global("torch", name), obj.key, "cpu", obj.array.size)
        return None


def write_pth(
    path,
    tensors: dict,
    archive_name: str = "archive",
    extra: dict | None = None,
    byteorder: str = "little",
) -> None:
    """Write {name: ndarray | StridedView | nested dict | plain value} as torch.save (zip
    format, pickle protocol 2) would. Views sharing one storage array share one storage
    record. `extra` adds raw archive entries (tests of refusals)."""
    storages: dict[int, _StorageRef] = {}

    def ref(array: np.ndarray) -> _StorageRef:
        if id(array) not in storages:
            storages[id(array)] = _StorageRef(str(len(storages)), array)
        return storages[id(array)]

    def pickled(value):
        if isinstance(value, StridedView):
            return _Tensor(ref(value.storage), value.offset, value.size, value.stride)
        if isinstance(value, np.ndarray):
            array = np.ascontiguousarray(value)
            strides = [s // array.itemsize for s in array.strides] if array.ndim else []
            return _Tensor(ref(array), 0, array.shape, strides)
        if isinstance(value, dict):  # e.g. {'epoch': 3, 'state_dict': {...}}
            return collections.OrderedDict((k, pickled(v)) for k, v in value.items())
        return value

    state = pickled(dict(tensors))
    buffer = io.BytesIO()
    _TorchPickler(buffer, protocol=2).dump(state)
    order = "<" if byteorder == "little" else ">"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{archive_name}/data.pkl", buffer.getvalue())
        archive.writestr(f"{archive_name}/byteorder", byteorder)
        for storage in storages.values():
            flat = np.ascontiguousarray(storage.array).reshape(-1)
            archive.writestr(
                f"{archive_name}/data/{storage.key}",
                flat.astype(flat.dtype.newbyteorder(order)).tobytes(),
            )
        archive.writestr(f"{archive_name}/version", "3\n")
        for name, data in (extra or {}).items():
            archive.writestr(f"{archive_name}/{name}", data)
