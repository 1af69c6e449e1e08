"""lcm_core: the engine behind comfyui-lcm.

Loading, LoRA, sampling, training and the headless graph runner for Latent Consistency
Models. It never imports ComfyUI; host services (model folders, progress, interruption)
come in through `lcm_core.paths` and `lcm_core.progress`. Importing it is cheap: the
heavy libraries load when a submodule that needs them is first used.
"""

__version__ = "0.1.0"
