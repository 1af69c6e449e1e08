"""The pack's node classes, one module per theme, gathered into ComfyUI's mappings.

Importing this is cheap: node modules import the engine's heavy parts (torch,
diffusers) inside their functions. The headless stand-ins for ComfyUI's core nodes
(`LoadImage`, `SaveImage`, ...) are registered only when ComfyUI is not the host.
"""

from __future__ import annotations

from . import conditioning, host, io, latents, loaders, lora, sampling, training

_THEMES: tuple = (conditioning, latents, loaders, lora, sampling, training)
_HEADLESS_ONLY: tuple = (io,)

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

for _module in _THEMES + (() if host.inside_comfyui() else _HEADLESS_ONLY):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)

host.install()
