"""Read a PyTorch checkpoint (.pth from `torch.save`) into numpy arrays, without torch.

Since torch 1.6 `torch.save` writes a zip: `<name>/data.pkl` is a pickle (protocol 2)
of the saved object in which every tensor is a call
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and every storage
a persistent id `('storage', torch.<Type>Storage, key, location, numel)` whose bytes lie
raw in `<name>/data/<key>`; `<name>/byteorder` says 'little' or 'big' (absent: little).

A pickle can call any importable function, so unpickling an untrusted file can run
arbitrary code. This reader resolves only the handful of globals a state dict needs
(OrderedDict, the tensor/parameter rebuild functions, the storage types) and refuses
anything else; tensors become numpy arrays built from their storage with the recorded
offset, size and stride (views of one storage therefore come out right).
"""

from __future__ import annotations

import collections
import math
import os
import pickle
import zipfile
from typing import Any

import ml_dtypes
import numpy as np

from video_s3d.errors import UserError, UserFileError

STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}

# What torch.save wrote before 1.6: a bare pickle stream starting with this magic number.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class TorchFileError(UserError):
    """The file is not a state dict this reader can load safely."""


class _StorageType:
    """Stands in for torch.<Type>Storage: only its element dtype matters here."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    del requires_grad, backward_hooks, metadata  # autograd state: meaningless for numpy
    if not isinstance(storage, np.ndarray):
        raise TorchFileError(
            f"A tensor record names a {type(storage).__name__} where a storage "
            "belongs; the file is corrupt or not a torch.save state dict."
        )
    try:
        size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        storage_offset = int(storage_offset)
    except (TypeError, ValueError):
        raise TorchFileError(
            f"Corrupt tensor record: size {size!r}, stride {stride!r}, offset "
            f"{storage_offset!r}; re-save the file with torch.save."
        ) from None
    if (
        len(size) != len(stride)
        or any(s < 0 for s in stride)
        or any(n < 0 for n in size)
        or storage_offset < 0
    ):
        raise TorchFileError(
            f"Corrupt tensor record: size {size}, stride {stride}, "
            f"offset {storage_offset}; re-save the file with torch.save."
        )
    # Python ints: no overflow. A stride-0 tensor (torch's expand) repeats storage elements,
    # so its copy could be far larger than the file (a 648-byte file asked for 2.1 GB);
    # a state dict's tensors never hold more elements than their storage.
    numel = math.prod(size)
    if numel > storage.size:
        raise TorchFileError(
            f"A tensor of size {size} with stride {stride} has {numel} elements but its storage "
            f"holds {storage.size}; expanded or corrupt tensors are refused: save "
            f"{{name: tensor.contiguous()}} with torch.save."
        )
    if numel == 0:
        return np.zeros(size, storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise TorchFileError(
            f"A tensor of size {size} with stride {stride} at offset {storage_offset} reaches "
            f"element {last} of a storage holding {storage.size}; the file is truncated or corrupt."
        )
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:],
        shape=size,
        strides=tuple(s * itemsize for s in stride),
        writeable=False,
    )
    return np.array(view, order="C")  # own C-order copy: views of one storage stay independent


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    del requires_grad, backward_hooks
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    del requires_grad, backward_hooks, state
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, byteorder: str):
        super().__init__(file)
        self._archive, self._prefix, self._byteorder = archive, prefix, byteorder
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchFileError(
            f"The checkpoint refers to {module}.{name}, which a plain state dict never needs, "
            "so it is refused (unpickling it could run arbitrary code); save only "
            "model.state_dict() with torch.save and import that file."
        )

    def persistent_load(self, pid):
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
        ):
            raise TorchFileError(
                f"Unsupported storage record {pid!r} in the checkpoint; re-save "
                "it with torch.save(model.state_dict(), path)."
            )
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            name = f"{self._prefix}data/{key}"
            try:
                raw = self._archive.read(name)
            except KeyError:
                raise TorchFileError(
                    f"The checkpoint lacks storage {name}; the file is truncated or corrupt."
                ) from None
            dtype = storage_type.dtype.newbyteorder("<" if self._byteorder == "little" else ">")
            if len(raw) < numel * dtype.itemsize:
                raise TorchFileError(
                    f"Storage {name} holds {len(raw)} bytes, fewer than its "
                    f"{numel} elements need; the file is truncated or corrupt."
                )
            array = np.frombuffer(raw, dtype=dtype, count=numel)
            self._storages[key] = array.astype(storage_type.dtype.newbyteorder("="))
        return self._storages[key]


def _is_legacy(path: str) -> bool:
    """A pre-1.6 torch.save file starts with the pickled magic number."""
    magic = pickle.dumps(_LEGACY_MAGIC, protocol=2)
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def load(path: str | os.PathLike) -> Any:
    """The object saved in a torch.save zip file, with tensors as numpy arrays."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserFileError(f"No PyTorch checkpoint at {path}; pass the .pth file's path.")
    if not zipfile.is_zipfile(path):
        if _is_legacy(path):
            raise TorchFileError(
                f"{path} uses PyTorch's legacy (pre-1.6) format, which this reader does not "
                "parse; re-save it with torch>=1.6: torch.save(torch.load(path), new_path)."
            )
        raise TorchFileError(
            f"{path} is not a PyTorch checkpoint (neither a torch.save zip nor "
            "its legacy format); pass the .pth written by torch.save."
        )
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if any(n.endswith("/constants.pkl") for n in names):
            raise TorchFileError(
                f"{path} is a TorchScript archive, not a state dict; save "
                "model.state_dict() with torch.save and import that file."
            )
        if len(pickles) != 1:
            raise TorchFileError(
                f"{path} is a zip but not a torch.save checkpoint (expected one "
                "<name>/data.pkl); pass the .pth written by torch.save."
            )
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode().strip()
            if byteorder not in ("little", "big"):
                raise TorchFileError(
                    f"{path} records byte order {byteorder!r}; expected 'little' or 'big'."
                )
        with archive.open(pickles[0]) as f:
            try:
                return _RestrictedUnpickler(f, archive, prefix, byteorder).load()
            except TorchFileError:
                raise
            except (
                pickle.UnpicklingError,
                EOFError,
                TypeError,
                ValueError,
                AttributeError,
                IndexError,
                KeyError,
            ) as e:
                raise TorchFileError(
                    f"Could not read {path}: {e}; the file is corrupt or not "
                    "a torch.save checkpoint."
                ) from e


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A {name: array} state dict from `path` (also unwraps {'state_dict': ...} / {'model': ...}
    and strips the 'module.' prefix that nn.DataParallel adds)."""
    obj = load(path)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise TorchFileError(
            f"{os.fspath(path)} holds a {type(obj).__name__} that is not a "
            "{name: tensor} state dict; save model.state_dict() with torch.save."
        )
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)
