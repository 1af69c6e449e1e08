"""The training nodes keep DESIGN.md's contract, refuse dataset paths outside the input
folder, retrain only when the dataset changes, and run end to end inside a host."""

from __future__ import annotations

import os

import pytest
import torch

from lcm_core.errors import PathEscapeError
from support.host import comfy_host
from support.training_models import tiny_handles, write_dataset

REQUIRED = ["model", "clip", "vae", "dataset_dir", "steps", "learning_rate", "batch_size", "resolution",
            "lora_rank", "seed", "save_name"]


@pytest.fixture
def host(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with comfy_host(tmp_path) as ctx:
        yield ctx
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name, display", [("LCMFineTune", "LCM Fine-tune (LCF)"),
                                           ("LCMDistillLoRA", "Distill LCM-LoRA (LCD)")])
def test_nodes_follow_the_design_table(host, name, display):
    pack, _, _ = host
    cls = pack.NODE_CLASS_MAPPINGS[name]
    spec = cls.INPUT_TYPES()
    assert list(spec["required"]) == REQUIRED and list(spec["optional"]) == ["resume"]
    assert all("tooltip" in opts for _, opts in (*spec["required"].values(), *spec["optional"].values()))
    assert cls.RETURN_TYPES == ("LCM_MODEL", "STRING", "IMAGE")
    assert pack.NODE_DISPLAY_NAME_MAPPINGS[name] == display
    assert cls.CATEGORY.startswith("LCM/")


def test_dataset_outside_the_input_folder_is_refused(host):
    from lcm_core.training.entry import train_node

    model, clip, vae = tiny_handles()
    with pytest.raises(PathEscapeError):
        train_node("lcd", model, clip, vae, "../secrets", 2, 1e-4, 1, 32, 4, 0, "x")


def test_is_changed_follows_the_dataset_folder(host):
    pack, _, dirs = host
    node = pack.NODE_CLASS_MAPPINGS["LCMDistillLoRA"]
    write_dataset(dirs["input"] / "ds", 2)
    first = node.IS_CHANGED(dataset_dir="ds", steps=10)
    assert node.IS_CHANGED(dataset_dir="ds", steps=10) == first, "unchanged graph: cached"
    (dirs["input"] / "ds" / "img000.txt").write_text("a new caption")
    os.utime(dirs["input"] / "ds" / "img000.txt", ns=(1, 1))
    assert node.IS_CHANGED(dataset_dir="ds", steps=10) != first, "edited dataset: retrain"


def test_distill_node_trains_saves_and_reports_progress(host):
    pack, record, dirs = host
    write_dataset(dirs["input"] / "ds", 2)
    model, clip, vae = tiny_handles()
    node = pack.NODE_CLASS_MAPPINGS["LCMDistillLoRA"]()
    trained, saved, curve = node.train(model, clip, vae, "ds", 3, 1e-3, 2, 32, 4, 0, "node_lora")
    assert saved == "node_lora.safetensors" and (dirs["models"] / "loras" / saved).is_file()
    assert trained.method == "lcm-lora" and trained is not model
    assert curve.shape == (1, 360, 640, 3)
    assert [p[0] for p in record.progress] == [1, 2, 3]
    assert not any(".lora_" in n for n, _ in model.unet.named_parameters()), "the input model is untouched"
