"""Bad inputs give a clear, typed error naming the problem, and touch no file;
a second load of the same file is a cache hit that reads nothing."""

from __future__ import annotations

import builtins
import io
import os
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from lcm_core import paths
from lcm_core.errors import ModelFormatError, ModelNotFoundError, PathEscapeError
from lcm_core.models import cache
from lcm_core.models.load import load_checkpoint


def snapshot(root):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def refused(root, error, name, **kwargs):
    """The error `load_checkpoint(name)` raises, checking that no file under `root` changed."""
    before = snapshot(root)
    with pytest.raises(error) as info:
        load_checkpoint(name, **kwargs)
    assert snapshot(root) == before, "a failed load changed files"
    return info.value


@pytest.fixture
def models_dir(tmp_path, tiny_configs, tiny_single_file):
    import shutil

    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    (root / "diffusers" / "LCM_Dreamshaper_v7").mkdir(parents=True)
    (root / "diffusers" / "LCM_Dreamshaper_v7" / "model_index.json").write_text("{}")
    shutil.copy(tiny_single_file("sd15")[0], root / "checkpoints" / "dreamshaper_lcm.safetensors")
    (tmp_path / "secret.safetensors").write_bytes(b"x")
    paths.configure(paths.LocalFolders(root))
    yield root
    paths.configure(None)


def test_missing_file_lists_close_matches(models_dir):
    error = refused(models_dir.parent, ModelNotFoundError, "dreamshaper_lmc.safetensors")
    assert error.input_name == "ckpt_name" and "dreamshaper_lcm.safetensors" in error.details
    error = refused(models_dir.parent, ModelNotFoundError, "LCM_Dreamshaper_v8")
    assert "LCM_Dreamshaper_v7" in error.details


@pytest.mark.parametrize("name", ["../secret.safetensors", "sub/../../secret.safetensors", "/etc/passwd"])
def test_names_outside_the_folder_are_refused(models_dir, name):
    refused(models_dir.parent, PathEscapeError, name)
    error = refused(models_dir.parent, PathEscapeError, "dreamshaper_lcm.safetensors", base=name)
    assert error.input_name == "base_ckpt_name"


def test_keys_matching_no_family(models_dir):
    save_file({"encoder.layer.0.weight": torch.zeros(2, 2)}, str(models_dir / "checkpoints" / "bert.safetensors"))
    error = refused(models_dir.parent, ModelFormatError, "bert.safetensors")
    assert "match no supported model family" in error.message
    assert "model.diffusion_model" in error.details and "encoder.layer.0.weight" in error.details


@pytest.mark.parametrize("cut", [0.5, 0.999, 0.0001])
def test_truncated_safetensors(models_dir, cut):
    data = (models_dir / "checkpoints" / "dreamshaper_lcm.safetensors").read_bytes()
    (models_dir / "checkpoints" / "cut.safetensors").write_bytes(data[:max(1, int(len(data) * cut))])
    error = refused(models_dir.parent, ModelFormatError, "cut.safetensors")
    assert "truncated or corrupt" in error.details


def test_garbage_file(models_dir):
    (models_dir / "checkpoints" / "junk.safetensors").write_bytes(os.urandom(4096))
    error = refused(models_dir.parent, ModelFormatError, "junk.safetensors")
    assert "truncated or corrupt" in error.details


class Evil:
    """A pickle that would create a file when unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused(models_dir, tmp_path, writer):
    target = tmp_path / "pwned"
    path = models_dir / "checkpoints" / "evil.ckpt"
    payload = {"state_dict": {"model.diffusion_model.x": torch.zeros(1), "hook": Evil(target)}}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    error = refused(models_dir.parent, ModelFormatError, "evil.ckpt")
    assert "refused" in error.message and "weights_only" in error.details
    assert not target.exists()
    path.unlink()


def test_plain_tensor_ckpt_loads(models_dir, tiny_single_file):
    path, comps = tiny_single_file("sd15")
    torch.save({"state_dict": load_file(str(path)), "global_step": 10}, models_dir / "checkpoints" / "plain.ckpt")
    model, clip, vae = load_checkpoint("plain.ckpt", dtype="fp32", device="cpu")
    assert model.family == "sd15"
    assert torch.equal(model.unet.conv_in.weight, comps["unet"].conv_in.weight)
    (models_dir / "checkpoints" / "plain.ckpt").unlink()


def test_second_load_is_a_cache_hit_without_reading(models_dir, monkeypatch):
    first = load_checkpoint("dreamshaper_lcm.safetensors", dtype="fp32", device="cpu")
    hits = cache.MODELS.hits

    def refuse(*args, **kwargs):
        raise AssertionError(f"file read on a cache hit: {args[:1]}")

    import safetensors

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", refuse)
        m.setattr(io, "open", refuse)
        m.setattr(safetensors, "safe_open", refuse)
        m.setattr(torch, "load", refuse)
        m.setattr("lcm_core.models.load._load_parts", refuse)
        second = load_checkpoint("dreamshaper_lcm.safetensors", dtype="fp32", device="cpu")
    assert second is first and cache.MODELS.hits == hits + 1
    other_dtype = load_checkpoint("dreamshaper_lcm.safetensors", dtype="bf16", device="cpu")
    assert other_dtype[0] is not first[0]
    path = models_dir / "checkpoints" / "dreamshaper_lcm.safetensors"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    reloaded = load_checkpoint("dreamshaper_lcm.safetensors", dtype="fp32", device="cpu")
    assert reloaded[0] is not first[0]
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns - 10**9))


def test_broken_diffusers_folders(models_dir, tmp_path, tiny_diffusers_folder):
    import shutil

    folder = models_dir / "diffusers" / "broken"
    shutil.copytree(tiny_diffusers_folder("sd15", lcm=True)[0], folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    error = refused(models_dir.parent, ModelFormatError, "broken")
    assert error.input_name == "ckpt_name" and "broken" in error.message
    target = tmp_path / "pwned"
    weights.unlink()
    torch.save({"conv_in.weight": Evil(target)}, folder / "unet" / "diffusion_pytorch_model.bin")
    error = refused(models_dir.parent, ModelFormatError, "broken")
    assert "pickled code is refused" in error.details and not target.exists()
    shutil.rmtree(folder)
