"""torchvision S3D import: the torch-free .pth reader, the name mapping, logits vs PyTorch.

The golden logits (tests/fixtures/torchvision_s3d_golden.json) were recorded from real
torchvision by tests/fixtures/make_torchvision_golden.py; here the same weights are drawn
again from their numpy seed, written as a .pth by interop_testing.write_pth, imported and
run in JAX. Where torch is installed, test_matches_pytorch_directly also compares live.
"""

import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import interop_testing
import jax
import numpy as np
import pytest
from models_testing import jit

from video_s3d import checkpointing, errors, import_weights, models, parallel
from video_s3d.interop import torch_pickle, torchvision_s3d
from video_s3d.interop import variables as variables_lib

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture(scope="module")
def golden():
    with open(os.path.join(FIXTURES, "torchvision_s3d_golden.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def seeded_pth(golden, tmp_path_factory):
    state = interop_testing.seeded_state_dict(golden["entries"], golden["seed"])
    path = str(tmp_path_factory.mktemp("pth") / "s3d_seeded.pth")
    interop_testing.write_pth(path, state, archive_name="s3d_seeded")
    return path, state


def _clip(golden):
    x = interop_testing.seeded_input(golden["input_shape"], golden["seed"] + 1)
    return x.transpose(0, 2, 3, 4, 1)  # N C T H W -> N T H W C


def _assert_logits_match(ours, reference):
    """1e-4 relative: every logit within 1e-4 of the largest |logit|, and the whole vector
    within 1e-4 relative L2 distance."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    scale = np.abs(reference).max()
    assert scale > 1.0  # the seeded net is lively: logits are not ~0
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * scale)
    assert np.linalg.norm(ours - reference) <= 1e-4 * np.linalg.norm(reference)


# ------------------------------------------------------------------------- the reader
def test_reads_views_saved_by_real_torch():
    """tests/fixtures/torch_views.pth (make_torch_views.py, real torch.save): transposes,
    slices with offsets, a 0-d scalar, half / bfloat16 / int / bool storages, shared storage."""
    loaded = torch_pickle.load(os.path.join(FIXTURES, "torch_views.pth"))
    expected = np.load(os.path.join(FIXTURES, "torch_views_expected.npz"))
    names = [k for k in expected.files if k != "torch_version"]
    assert sorted(loaded) == sorted(names)
    for name in names:
        value = loaded[name]
        assert value.shape == expected[name].shape, name
        np.testing.assert_array_equal(
            value.astype(expected[name].dtype), expected[name], err_msg=name
        )
    assert loaded["bfloat16"].dtype.name == "bfloat16" and loaded["half"].dtype == np.float16
    assert loaded["num_batches_tracked"].dtype == np.int64 and loaded["mask"].dtype == np.bool_
    assert loaded["transposed"].flags.c_contiguous  # copied out of the storage


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_reads_strided_views_and_byte_order(tmp_path, byteorder):
    storage = np.arange(60, dtype=np.float32)
    tensors = {
        "whole": storage,
        "offset_slice": interop_testing.StridedView(storage, 7, (3, 4), (10, 2)),
        "transposed": interop_testing.StridedView(storage, 0, (6, 10), (1, 6)),
        "int64": np.array([[1, -2, 3]], np.int64),
    }
    path = tmp_path / "views.pth"
    interop_testing.write_pth(path, tensors, byteorder=byteorder)
    loaded = torch_pickle.load(path)
    np.testing.assert_array_equal(loaded["whole"], storage)
    np.testing.assert_array_equal(loaded["offset_slice"], storage[7:37].reshape(3, 10)[:, 0:8:2])
    np.testing.assert_array_equal(loaded["transposed"], storage.reshape(10, 6).T)
    np.testing.assert_array_equal(loaded["int64"], tensors["int64"])
    with zipfile.ZipFile(path) as archive:  # views share one storage record: 2 in all
        assert sum("/data/" in n for n in archive.namelist()) == 2


def test_refuses_globals_a_state_dict_never_needs(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo should-never-run",))

    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
    with pytest.raises(
        torch_pickle.TorchFileError, match=r"refers to (posix|os|nt)\.system.*refused"
    ):
        torch_pickle.load(path)


def test_refusals_are_one_sentence_each(tmp_path):
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + b"rest of an old file")
    with pytest.raises(torch_pickle.TorchFileError, match=r"legacy .*re-save it with torch>=1.6"):
        torch_pickle.load(legacy)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(torch_pickle.TorchFileError, match="is not a PyTorch checkpoint"):
        torch_pickle.load(junk)
    script = tmp_path / "scripted.pt"
    with zipfile.ZipFile(script, "w") as archive:
        archive.writestr("m/data.pkl", b"")
        archive.writestr("m/constants.pkl", b"")
    with pytest.raises(torch_pickle.TorchFileError, match="TorchScript archive"):
        torch_pickle.load(script)
    truncated = tmp_path / "truncated.pth"
    interop_testing.write_pth(
        truncated, {"w": interop_testing.StridedView(np.zeros(4, np.float32), 2, (3,), (1,))}
    )
    with pytest.raises(
        torch_pickle.TorchFileError, match="reaches element 4 of a storage holding 4"
    ):
        torch_pickle.load(truncated)
    with pytest.raises(FileNotFoundError, match="pass the .pth"):
        torch_pickle.load(tmp_path / "missing.pth")


def test_load_state_dict_unwraps_and_rejects(tmp_path):
    weights = {"module.a": np.ones(2, np.float32), "module.b": np.zeros(1, np.float32)}
    path = tmp_path / "wrapped.pth"  # a training script's checkpoint of a DataParallel model
    interop_testing.write_pth(path, {"epoch": 3, "state_dict": weights})
    loaded = torch_pickle.load_state_dict(path)
    assert sorted(loaded) == ["a", "b"]
    np.testing.assert_array_equal(loaded["a"], weights["module.a"])
    other = tmp_path / "other.pth"
    interop_testing.write_pth(other, {"epoch": 3, "weights": weights})
    with pytest.raises(
        torch_pickle.TorchFileError,
        match="holds a OrderedDict that is not a {name: tensor} state dict",
    ):
        torch_pickle.load_state_dict(other)


# ------------------------------------------------------------------------ the mapping
def test_every_tensor_maps_once_and_fills_every_leaf(golden, seeded_pth):
    _, state = seeded_pth
    flat = torchvision_s3d.convert(state)
    float_tensors = [k for k in state if not k.endswith("num_batches_tracked")]
    assert len(flat) == len(float_tensors)  # one leaf per tensor, none merged or dropped
    abstract = variables_lib.abstract_variables(models.create("s3d_torchvision", 400), 13, 209)
    n_leaves = len(jax.tree_util.tree_leaves(abstract))
    assert n_leaves == len(flat)
    variables_lib.fill(flat, abstract, "test")  # shapes agree leaf by leaf
    # Layout: torch [out, in, kt, kh, kw] -> ours [kt, kh, kw, in, out].
    kernel = flat[("params", "backbone", "Conv_1a", "temporal_conv", "kernel")]
    np.testing.assert_array_equal(kernel, state["features.0.1.0.weight"].transpose(2, 3, 4, 1, 0))
    np.testing.assert_array_equal(
        flat[("batch_stats", "backbone", "Mixed_5b", "Branch_2_Conv_0b_3x3", "temporal_bn", "var")],
        state["features.14.branch2.1.1.1.running_var"],
    )


def test_wrong_state_dicts_fail_with_the_names(seeded_pth):
    _, state = seeded_pth
    lacking = {k: v for k, v in state.items() if k != "features.6.branch3.1.0.weight"}
    with pytest.raises(
        ValueError, match=r"lacks 1 tensors it needs \(features\.6\.branch3\.1\.0\.weight\)"
    ):
        torchvision_s3d.convert(lacking)
    with pytest.raises(ValueError, match=r"has 1 tensors S3D does not \(fc\.weight\)"):
        torchvision_s3d.convert({**state, "fc.weight": np.zeros((2, 2), np.float32)})
    abstract = variables_lib.abstract_variables(models.create("s3d_torchvision", 400), 13, 209)
    wrong = dict(torchvision_s3d.convert(state))
    wrong[("params", "head", "Logits", "bias")] = np.zeros(5, np.float32)
    with pytest.raises(
        ValueError, match=r"1 with the wrong shape.*params/head/Logits/bias \(5,\) vs \(400,\)"
    ):
        variables_lib.fill(wrong, abstract, "test")


def test_logits_match_recorded_torchvision(golden, seeded_pth):
    """Real torchvision's logits (recorded) vs ours on the same weights and clip, 1e-4 relative."""
    path, _ = seeded_pth
    variables, num_classes = torchvision_s3d.load_variables(path)
    assert num_classes == 400
    model = models.create("s3d_torchvision", num_classes)
    with jax.default_matmul_precision("highest"):  # GPUs default to TF32: 5e-4 off on an H100
        logits = jit(lambda v, x: model.apply(v, x, train=False))(variables, _clip(golden))
    _assert_logits_match(logits, golden["logits"])


# Runs in a child process: torch and TensorFlow (imported by conftest) crash when loaded
# into one process (seen with torch 2.14.1 + tensorflow-cpu 2.21: segfault on import).
_TORCH_SCRIPT = """
import sys
import numpy as np
import torch
from torchvision.models.video import s3d

pth, logits_path, input_path = sys.argv[1:]
torch.manual_seed(0)
torch.set_num_threads(2)
model = s3d(weights=None, num_classes=400).eval()
with torch.no_grad():  # torch's default init shrinks activations and leaves BN at 0 / 1
    for module in model.modules():
        if isinstance(module, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.uniform_(0.5, 1.5)
            module.bias.uniform_(-0.1, 0.1)
torch.save(model.state_dict(), pth)
with torch.no_grad():
    logits = model(torch.from_numpy(np.load(input_path)))
np.save(logits_path, logits.numpy())
"""


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None,
    reason="torch/torchvision not installed (not a dependency)",
)
def test_matches_pytorch_directly(golden, tmp_path):
    """Live: torchvision's model with torch's own random init, saved by torch.save, imported."""
    x = interop_testing.seeded_input(golden["input_shape"], golden["seed"] + 1)
    np.save(tmp_path / "x.npy", x)
    pth, logits_path = tmp_path / "s3d_torch_saved.pth", tmp_path / "logits.npy"
    subprocess.run(
        [sys.executable, "-c", _TORCH_SCRIPT, str(pth), str(logits_path), str(tmp_path / "x.npy")],
        check=True,
        timeout=600,
    )
    variables, _ = torchvision_s3d.load_variables(pth)
    model = models.create("s3d_torchvision", 400)
    with jax.default_matmul_precision("highest"):
        ours = jit(lambda v, x: model.apply(v, x, train=False))(
            variables, x.transpose(0, 2, 3, 4, 1)
        )
    _assert_logits_match(ours, np.load(logits_path))


# ------------------------------------------------------------------------------ CLI
def test_cli_writes_a_workdir_init_from_reads(seeded_pth, tmp_path, capsys):
    path, state = seeded_pth
    out = str(tmp_path / "imported")
    assert (
        import_weights.main(["--source=torchvision_s3d", f"--path={path}", f"--workdir={out}"]) == 0
    )
    assert "train with --config.init_from=" in capsys.readouterr().err
    model = models.create("s3d_torchvision", 400)
    abstract = variables_lib.abstract_variables(model, 13, 209)
    mesh = parallel.make_mesh()
    restored, info = checkpointing.load_variables(out, abstract, mesh)
    assert info["model"] == "s3d_torchvision" and info["num_classes"] == 400 and info["step"] == 0
    assert info["input_normalization"]["std"] == list(torchvision_s3d.INPUT_STD)
    expected = variables_lib.fill(torchvision_s3d.convert(state), abstract, "test")
    for (p, a), b in zip(
        jax.tree_util.tree_leaves_with_path(restored), jax.tree_util.tree_leaves(expected)
    ):
        np.testing.assert_array_equal(np.asarray(a), b, err_msg=jax.tree_util.keystr(p))
    # The same workdir twice: refused, nothing overwritten.
    assert (
        import_weights.main(["--source=torchvision_s3d", f"--path={path}", f"--workdir={out}"]) == 2
    )
    assert "already holds checkpoints" in capsys.readouterr().err


def test_cli_keeps_the_traceback_of_a_bug(seeded_pth, tmp_path, monkeypatch):
    """A wrong file is one line (above); a ValueError raised by a bug is not swallowed."""
    path, _ = seeded_pth

    def broken_importer(*args, **kwargs):
        raise ValueError("an internal error")

    monkeypatch.setitem(import_weights.IMPORTERS, "torchvision_s3d", broken_importer)
    with pytest.raises(ValueError, match="an internal error"):
        import_weights.main(
            ["--source=torchvision_s3d", f"--path={path}", f"--out={tmp_path / 'out'}"]
        )


def test_cli_fresh_classifier_and_bad_input(seeded_pth, tmp_path, capsys):
    path, state = seeded_pth
    out = str(tmp_path / "seven")
    assert (
        import_weights.main(
            [
                "--source=torchvision_s3d",
                f"--path={path}",
                f"--workdir={out}",
                "--num_classes=7",
                "--seed=3",
            ]
        )
        == 0
    )
    model = models.create("s3d_torchvision", 7)
    restored, info = checkpointing.load_variables(
        out, variables_lib.abstract_variables(model, 13, 209), parallel.make_mesh()
    )
    assert info["num_classes"] == 7 and info["source_num_classes"] == 400
    assert info["fresh_leaves"] == ["params/head/Logits/kernel", "params/head/Logits/bias"]
    kernel = np.asarray(restored["params"]["head"]["Logits"]["kernel"])
    assert kernel.shape == (1, 1, 1, 1024, 7) and 0.005 < kernel.std() < 0.02  # TF-Slim's init
    np.testing.assert_array_equal(  # the backbone is the file's
        np.asarray(restored["params"]["backbone"]["Conv_2b"]["conv"]["kernel"]),
        state["features.2.0.weight"].transpose(2, 3, 4, 1, 0),
    )
    capsys.readouterr()
    assert (
        import_weights.main(
            [
                "--source=torchvision_s3d",
                f"--path={path}",
                "--model=s3d",
                f"--workdir={tmp_path / 'x'}",
            ]
        )
        == 2
    )
    assert "fit only --model=s3d_torchvision" in capsys.readouterr().err
    assert (
        import_weights.main(
            [
                "--source=torchvision_s3d",
                f"--path={tmp_path / 'nope.pth'}",
                f"--workdir={tmp_path / 'y'}",
            ]
        )
        == 2
    )
    assert "No file at --path=" in capsys.readouterr().err


def test_refuses_tensors_larger_than_their_storage_and_wrong_storage_records(tmp_path):
    # The 648-byte file: a stride-0 tensor whose copy would take 2.1 GB.
    expanded = tmp_path / "expanded.pth"
    interop_testing.write_pth(
        expanded,
        {"w": interop_testing.StridedView(np.zeros(4, np.float32), 0, (1 << 19, 1 << 10), (0, 1))},
    )
    assert os.path.getsize(expanded) < 2048
    with pytest.raises(
        torch_pickle.TorchFileError,
        match=r"has 536870912 elements but its "
        r"storage holds 4; .* refused",
    ):
        torch_pickle.load(expanded)
    # The 4 TiB variant (MemoryError traceback before): the same sentence, nothing allocated.
    huge = tmp_path / "huge.pth"
    interop_testing.write_pth(
        huge,
        {"w": interop_testing.StridedView(np.zeros(4, np.float32), 0, (1 << 21, 1 << 20), (0, 0))},
    )
    with pytest.raises(torch_pickle.TorchFileError, match="elements but its storage holds 4"):
        torch_pickle.load(huge)
    # A tensor record whose "storage" is not a storage (AttributeError traceback before).
    wrong = tmp_path / "wrong_storage.pth"
    with zipfile.ZipFile(wrong, "w") as archive:
        tensor = interop_testing._Tensor(None, 0, (2,), (1,))
        tensor.args = (7,) + tensor.args[1:]
        buffer = io.BytesIO()
        interop_testing._TorchPickler(buffer, protocol=2).dump({"w": tensor})
        archive.writestr("a/data.pkl", buffer.getvalue())
    with pytest.raises(torch_pickle.TorchFileError, match="names a int where a storage belongs"):
        torch_pickle.load(wrong)
    # Every refusal is a user error: entry points print it as one line.
    assert issubclass(torch_pickle.TorchFileError, errors.UserError)
