"""Fixtures for graph tests: headless folders under tmp_path and a fresh call counter."""

from __future__ import annotations

import pytest

from lcm_core import paths
from support import dummy_nodes


@pytest.fixture
def folders(tmp_path):
    """`LocalFolders` with models/input/output/temp under tmp_path; restored afterwards."""
    local = paths.LocalFolders(models_dir=tmp_path / "models", input_dir=tmp_path / "input",
                               output_dir=tmp_path / "output", temp_dir=tmp_path / "temp")
    for folder in (local.input_dir, local.output_dir, local.temp_dir):
        folder.mkdir(parents=True)
    paths.configure(local)
    dummy_nodes.CALLS.clear()
    yield local
    paths.configure(None)
