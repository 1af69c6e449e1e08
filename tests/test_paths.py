"""Names resolve inside their folder or are refused."""

from __future__ import annotations

import os

import pytest

from lcm_core import paths
from lcm_core.errors import ModelNotFoundError, PathEscapeError


@pytest.fixture
def models(tmp_path):
    root = tmp_path / "models"
    (root / "checkpoints" / "sub").mkdir(parents=True)
    (root / "checkpoints" / "dreamshaper_lcm.safetensors").write_bytes(b"x")
    (root / "checkpoints" / "sub" / "other.safetensors").write_bytes(b"x")
    (root / "diffusers" / "LCM_Dreamshaper_v7").mkdir(parents=True)
    (root / "diffusers" / "LCM_Dreamshaper_v7" / "model_index.json").write_text("{}")
    (tmp_path / "secret.safetensors").write_bytes(b"x")
    paths.configure(paths.LocalFolders(root, output_dir=tmp_path / "out"))
    yield root
    paths.configure(None)


def test_lists_and_resolves(models):
    assert paths.list_files("checkpoints") == ["dreamshaper_lcm.safetensors", "sub/other.safetensors"]
    assert paths.list_dirs("diffusers", "model_index.json") == ["LCM_Dreamshaper_v7"]
    assert paths.resolve("checkpoints", "sub/other.safetensors") == models / "checkpoints/sub/other.safetensors"


@pytest.mark.parametrize("name", ["../secret.safetensors", "/etc/passwd", "sub/../../secret.safetensors",
                                  "..\\secret.safetensors", "", "C:/x.safetensors"])
def test_refuses_names_outside(models, name):
    with pytest.raises(PathEscapeError):
        paths.resolve("checkpoints", name, input_name="ckpt_name")


def test_refuses_symlink_escape(models, tmp_path):
    os.symlink(tmp_path / "secret.safetensors", models / "checkpoints" / "link.safetensors")
    with pytest.raises(PathEscapeError, match="outside"):
        paths.resolve("checkpoints", "link.safetensors")


def test_missing_names_close_matches(models):
    with pytest.raises(ModelNotFoundError) as err:
        paths.resolve("checkpoints", "dreamshaper_lcn.safetensors", input_name="ckpt_name")
    assert "dreamshaper_lcm.safetensors" in err.value.details
    assert err.value.to_comfy()["extra_info"] == {"input_name": "ckpt_name"}


def test_models_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LCM_MODELS_DIR", str(tmp_path))
    paths.configure(None)
    assert paths.folders("loras") == [tmp_path / "loras"]
    paths.configure(None)


def test_comfyui_install_models_dir(monkeypatch, tmp_path):
    (tmp_path / "models").mkdir()
    monkeypatch.delenv("LCM_MODELS_DIR", raising=False)
    monkeypatch.setenv("COMFYUI_PATH", str(tmp_path))
    assert paths.default_models_dir() == tmp_path / "models"


def test_models_dir_falls_back_to_the_pack_then_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("LCM_MODELS_DIR", raising=False)
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    assert paths.default_models_dir() == paths.PACK_MODELS_DIR
    monkeypatch.setattr(paths, "PACK_MODELS_DIR", tmp_path / "site-packages" / "models")
    monkeypatch.chdir(tmp_path)
    assert paths.default_models_dir() == tmp_path / "models"
