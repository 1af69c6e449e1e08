"""Model handles and loaders (single-file checkpoints, diffusers folders).

`load_checkpoint(name_or_path, dtype, device, base)` returns the `LCM_MODEL`, `LCM_CLIP`
and `LCM_VAE` handles (`handles.py`); `detect.py` names the family, `single_file.py` and
`diffusers_folder.py` read the two formats with the configs in `configs/`, `cache.py`
keeps loaded models. Importing this package is cheap: torch and diffusers load on first use.
"""

from .load import load_checkpoint

__all__ = ["load_checkpoint"]
