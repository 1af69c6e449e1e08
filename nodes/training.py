"""Training nodes: LCM fine-tuning (LCF) and LCM-LoRA distillation (LCD) inside a graph."""

from __future__ import annotations

from . import host
from ._engine import engine

_SEED_MAX = 0xFFFFFFFFFFFFFFFF


def _inputs(model_tip: str, rank_tip: str, rank_min: int, default_name: str) -> dict:
    return {
        "required": {
            "model": ("LCM_MODEL", {"tooltip": model_tip}),
            "clip": ("LCM_CLIP", {"tooltip": "The model's text encoder, used to encode the captions (frozen)."}),
            "vae": ("LCM_VAE", {"tooltip": "The model's VAE, used to encode the images (frozen)."}),
            "dataset_dir": ("STRING", {"default": "lcm_dataset", "multiline": False,
                                       "tooltip": "Folder inside ComfyUI's input folder: images with same-named "
                                                  ".txt captions, or a metadata.jsonl (file_name, text)."}),
            "steps": ("INT", {"default": 1000, "min": 1, "max": 1000000, "step": 1,
                              "tooltip": "Optimizer steps. LCM-LoRA distillation typically needs thousands."}),
            "learning_rate": ("FLOAT", {"default": 1e-4, "min": 1e-7, "max": 1e-1, "step": 1e-6, "round": 1e-7,
                                        "tooltip": "AdamW learning rate; 1e-4 for LoRA, ~1e-6 for a full UNet."}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 256, "step": 1,
                                   "tooltip": "Images per step; raise it as far as GPU memory allows."}),
            "resolution": ("INT", {"default": 512, "min": 64, "max": 2048, "step": 8,
                                   "tooltip": "Images are resized (shorter side) and center-cropped to this; "
                                              "images smaller than it are refused."}),
            "lora_rank": ("INT", {"default": 64, "min": rank_min, "max": 256, "step": 1, "tooltip": rank_tip}),
            "seed": ("INT", {"default": 0, "min": 0, "max": _SEED_MAX,
                             "tooltip": "Seeds LoRA init, data order, noise and timesteps: same seed, same result."}),
            "save_name": ("STRING", {"default": default_name, "multiline": False,
                                     "tooltip": "File name of the result (in the loras folder, or the diffusers "
                                                "folder for a full-UNet fine-tune); overwritten if present."}),
        },
        "optional": {
            "resume": ("BOOLEAN", {"default": False,
                                   "tooltip": "Continue from this save_name's last checkpoint (written every few "
                                              "steps and on interrupt) instead of starting afresh."}),
        },
    }


class _TrainingNode:
    RETURN_TYPES = ("LCM_MODEL", "STRING", "IMAGE")
    RETURN_NAMES = ("model", "saved_name", "loss_curve")
    OUTPUT_TOOLTIPS = ("The trained model, ready for the LCM Sampler.",
                       "The saved file's name in its models folder.",
                       "The loss per step, as an image.")
    FUNCTION = "train"
    CATEGORY = "LCM/training"
    METHOD = ""

    @classmethod
    def IS_CHANGED(cls, dataset_dir="", **kwargs):
        return engine("training.entry").dataset_signature(dataset_dir)

    def train(self, model, clip, vae, dataset_dir, steps, learning_rate, batch_size, resolution, lora_rank, seed,
              save_name, resume=False):
        return host.run(engine("training.entry").train_node, self.METHOD, model, clip, vae, dataset_dir, steps,
                        learning_rate, batch_size, resolution, lora_rank, seed, save_name, resume)


class LCMFineTune(_TrainingNode):
    """Latent Consistency Fine-tuning: consistency training on your images, no teacher."""

    METHOD = "lcf"
    DESCRIPTION = ("Fine-tune an LCM (or a model with an LCM-LoRA) on a captioned image folder by consistency "
                   "training (LCF), as a LoRA or, at rank 0, the full UNet. Checkpoints allow resuming.")

    @classmethod
    def INPUT_TYPES(cls):
        return _inputs("The LCM to fine-tune: LCM-distilled, or with an LCM-LoRA applied.",
                       "LoRA rank; 0 fine-tunes the full UNet (saved as a diffusers folder).", 0, "lcm_finetune")


class LCMDistillLoRA(_TrainingNode):
    """Latent Consistency Distillation of an LCM-LoRA from an SD teacher."""

    METHOD = "lcd"
    DESCRIPTION = ("Distil an LCM-LoRA from this SD model (the frozen teacher, with CFG) on a captioned image "
                   "folder (LCD), saved into the loras folder for 4-step sampling.")

    @classmethod
    def INPUT_TYPES(cls):
        return _inputs("The SD1.x/SD2.x model to distil from (the teacher; it stays unchanged).",
                       "LoRA rank; the published LCM-LoRAs use 64.", 1, "lcm_lora_distilled")


NODE_CLASS_MAPPINGS = {"LCMFineTune": LCMFineTune, "LCMDistillLoRA": LCMDistillLoRA}
NODE_DISPLAY_NAME_MAPPINGS = {"LCMFineTune": "LCM Fine-tune (LCF)", "LCMDistillLoRA": "Distill LCM-LoRA (LCD)"}
