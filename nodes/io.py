"""Headless stand-ins for ComfyUI's core image nodes, with ComfyUI's class_type, inputs
and behaviour. Registered only when ComfyUI is not the host (it has its own)."""

from __future__ import annotations

import random

from ._engine import engine

MAX_RESOLUTION = 16384


class LoadImage:
    """ComfyUI's LoadImage: an image from the input folder, with its alpha as a mask."""

    @classmethod
    def INPUT_TYPES(cls):
        names = engine("graph.imagefiles").list_input_images()
        return {"required": {"image": (names, {"image_upload": True,
                                               "tooltip": "Image file in the input folder (--input-dir)."})}}

    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("IMAGE", "MASK")
    OUTPUT_TOOLTIPS = ("The image, float32 [B,H,W,3] in 0..1.", "1 - alpha (zeros 64x64 when there is no alpha).")
    FUNCTION = "load_image"
    CATEGORY = "image"
    DESCRIPTION = "Loads an image from the input folder (EXIF orientation applied); alpha becomes an inverted mask."

    def load_image(self, image):
        return engine("graph.imagefiles").load_image(image)

    @classmethod
    def IS_CHANGED(cls, image):
        return engine("graph.imagefiles").file_hash(image)

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        if not engine("graph.imagefiles").image_exists(image):
            return f"Invalid image file: {image}"
        return True


class SaveImage:
    """ComfyUI's SaveImage: PNGs in the output folder with the workflow embedded."""

    TYPE = "output"
    PREFIX_APPEND = ""
    COMPRESS_LEVEL = 4

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": (
                    "Prefix of the file names; may hold a subfolder and %date% style tokens "
                    "(%year%, %month%, %day%, %width%, %height%).")}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    RETURN_TYPES = ()
    OUTPUT_TOOLTIPS = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    CATEGORY = "image"
    DESCRIPTION = ("Saves images as <prefix>_00001_.png in the output folder (never overwriting), with the "
                   "prompt and workflow embedded so the PNG can be loaded back as a workflow.")

    def save_images(self, images, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        results = engine("graph.imagefiles").save_images(images, filename_prefix + self.PREFIX_APPEND, self.TYPE,
                                                         prompt, extra_pnginfo, self.COMPRESS_LEVEL)
        return {"ui": {"images": results}}


class PreviewImage(SaveImage):
    """ComfyUI's PreviewImage: like SaveImage, into the temp folder."""

    TYPE = "temp"
    COMPRESS_LEVEL = 1

    def __init__(self):
        self.PREFIX_APPEND = "_temp_" + "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "The images to preview."})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    DESCRIPTION = "Saves images to the temp folder for a preview (ComfyUI shows them in the node)."


class EmptyLatentImage:
    """ComfyUI's EmptyLatentImage: a batch of zero latents to start txt2img from."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "width": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                              "tooltip": "Image width in pixels (the latent is width/8)."}),
            "height": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8,
                               "tooltip": "Image height in pixels (the latent is height/8)."}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096, "step": 1,
                                   "tooltip": "How many images to make at once."}),
        }}

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("Zeros [batch, 4, height/8, width/8].",)
    FUNCTION = "generate"
    CATEGORY = "latent"
    DESCRIPTION = "Creates empty latents of the given size; the sampler fills them with noise."

    def generate(self, width, height, batch_size=1):
        return (engine("graph.imagefiles").empty_latent(width, height, batch_size),)


NODE_CLASS_MAPPINGS = {
    "LoadImage": LoadImage,
    "SaveImage": SaveImage,
    "PreviewImage": PreviewImage,
    "EmptyLatentImage": EmptyLatentImage,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "LoadImage": "Load Image",
    "SaveImage": "Save Image",
    "PreviewImage": "Preview Image",
    "EmptyLatentImage": "Empty Latent Image",
}
