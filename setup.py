"""Package layout for the wheel (the rest of the metadata is in pyproject.toml).

The wheel carries the engine as `lcm_core` and the node classes (the `nodes/` folder)
as `lcm_nodes`: ComfyUI already owns a top-level module named `nodes`.
"""

from setuptools import find_packages, setup

engine = find_packages(include=["lcm_core", "lcm_core.*"])
node_layer = ["lcm_nodes"] + [f"lcm_nodes.{p}" for p in find_packages("nodes")]

setup(packages=engine + node_layer, package_dir={"lcm_nodes": "nodes"})
