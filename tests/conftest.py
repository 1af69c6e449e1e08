"""Shared pytest fixtures; the builders live in `tests/support/`."""

from __future__ import annotations

import pytest

from support import checkpoints


@pytest.fixture
def one_thread():
    """torch on one thread for the test (small models: thread hand-offs cost more than they
    win on a shared 2-core box), restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_config_root(tmp_path_factory):
    """A config root with every family shrunk to tiny widths (see support.checkpoints)."""
    return checkpoints.write_tiny_configs(tmp_path_factory.mktemp("tiny_configs"))


@pytest.fixture
def tiny_configs(tiny_config_root):
    """Inside the test, `lcm_core.models` reads the tiny configs; the model cache starts empty."""
    from lcm_core.models import cache, configs

    cache.MODELS.clear()
    with configs.use_root(tiny_config_root):
        yield tiny_config_root
    cache.MODELS.clear()


@pytest.fixture(scope="session")
def sd15_full_file(tmp_path_factory):
    """A full-size-architecture SD1.5 single file (fp16, random weights), written once."""
    path = tmp_path_factory.mktemp("full_sd15") / "sd15_full.safetensors"
    return checkpoints.write_full_size(path, "sd15_single_file_keys.json", seed=15)


@pytest.fixture(scope="session")
def sdxl_full_file(tmp_path_factory):
    """A full-size-architecture SDXL base single file (fp16, random weights), written once."""
    path = tmp_path_factory.mktemp("full_sdxl") / "sdxl_full.safetensors"
    return checkpoints.write_full_size(path, "sdxl_single_file_keys.json", seed=20)


@pytest.fixture(scope="session")
def tiny_single_file(tiny_config_root, tmp_path_factory):
    """`make(family, lcm=False, **kw) -> (path, components)`: a tiny single-file checkpoint
    in the original layout, written once per session per arguments (do not modify it)."""
    folder, made = tmp_path_factory.mktemp("tiny_single"), {}

    def make(family: str, lcm: bool = False, **kwargs):
        key = (family, lcm, tuple(sorted(kwargs.items())))
        if key not in made:
            path = folder / f"tiny_{len(made)}_{family}{'_lcm' if lcm else ''}.safetensors"
            made[key] = (path, checkpoints.write_single_file(path, family, tiny_config_root, lcm=lcm, **kwargs))
        return made[key]

    return make


@pytest.fixture(scope="session")
def tiny_diffusers_folder(tiny_config_root, tmp_path_factory):
    """`make(family, lcm=False, **kw) -> (path, components)`: a tiny diffusers folder,
    written once per session per arguments (do not modify it)."""
    folder, made = tmp_path_factory.mktemp("tiny_diffusers"), {}

    def make(family: str, lcm: bool = False, **kwargs):
        key = (family, lcm, tuple(sorted(kwargs.items())))
        if key not in made:
            path = folder / f"tiny_{len(made)}_{family}{'_lcm' if lcm else ''}"
            made[key] = (path, checkpoints.write_diffusers_folder(path, family, tiny_config_root, lcm=lcm, **kwargs))
        return made[key]

    return make
