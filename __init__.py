"""comfyui-lcm: Latent Consistency Model nodes for ComfyUI.

ComfyUI imports this folder as a package (module name = folder name) and reads the
mappings below. Nothing heavy happens here: models load when a node runs.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
