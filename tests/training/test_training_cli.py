"""`lcm-train` reads a TOML config plus options, loads a diffusers folder offline and
writes the LoRA into the models folder."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from lcm_core import paths
from lcm_core.training.cli import main
from support.training_models import tiny_handles, write_dataset


def _diffusers_folder(path):
    from diffusers import LCMScheduler, StableDiffusionPipeline

    from support.training_models import SD_SCHEDULER

    model, clip, vae = tiny_handles()
    StableDiffusionPipeline(vae=vae.vae, text_encoder=clip.text_encoders[0], tokenizer=clip.tokenizers[0],
                            unet=model.unet, scheduler=LCMScheduler.from_config(SD_SCHEDULER), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(path)
    return path


def test_cli_trains_from_toml_with_option_overrides(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = _diffusers_folder(tmp_path / "models" / "diffusers" / "tiny")
        data = write_dataset(tmp_path / "ds", 2)
        toml = tmp_path / "run.toml"
        toml.write_text(f'[training]\ndataset_dir = "{data}"\nsteps = 50\nresolution = 32\nlora_rank = 4\n'
                        f'output_dir = "{tmp_path / "run"}"\n')
        code = main(["lcd", "--config", str(toml), "--model", "tiny", "--models-dir", str(tmp_path / "models"),
                     "--steps", "2", "--save-name", "cli_lora", "--batch-size", "2"])
        assert code == 0, capsys.readouterr().err
        lora = load_file(str(tmp_path / "models" / "loras" / "cli_lora.safetensors"))
        assert any(k.endswith(".lora_down.weight") for k in lora)
        assert (tmp_path / "run" / "loss.csv").read_text().count("\n") == 3, "header + 2 steps (option beat TOML)"
        assert folder.is_dir()
        assert main(["lcd", "--model", "missing", "--models-dir", str(tmp_path / "models"),
                     "--dataset-dir", str(data)]) == 2
    finally:
        paths.configure(None)
        torch.set_num_threads(threads)
