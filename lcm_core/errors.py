"""Typed errors that say what went wrong, where, and how to fix it.

Every error can be rendered in ComfyUI's node-error shape (`type`, `message`,
`details`, `extra_info`) so the headless runner, the server and ComfyUI report it alike.
"""

from __future__ import annotations


class LCMError(Exception):
    """Base of every error the engine raises on purpose.

    `input_name` names the node input at fault, when there is one; `details` carries the
    longer explanation (close matches, the keys that did not match, the fix).
    """

    type = "lcm_error"

    def __init__(self, message: str, *, input_name: str | None = None, details: str = ""):
        super().__init__(message)
        self.message = message
        self.input_name = input_name
        self.details = details

    def to_comfy(self) -> dict:
        """This error as one entry of ComfyUI's `node_errors[id]["errors"]` list."""
        extra = {"input_name": self.input_name} if self.input_name else {}
        return {"type": self.type, "message": self.message, "details": self.details, "extra_info": extra}


class InputError(LCMError):
    """A value given to a node is invalid (out of range, wrong size, wrong family)."""

    type = "invalid_input"


class ModelNotFoundError(LCMError):
    """A named model file or folder does not exist in its model folder."""

    type = "model_not_found"


class PathEscapeError(LCMError):
    """A name resolves outside the folder it must stay in."""

    type = "path_outside_folder"


class ModelFormatError(LCMError):
    """A file exists but is not a model we can read (unknown keys, corrupt, pickle)."""

    type = "model_format"


class LoraError(LCMError):
    """A LoRA cannot be applied (unknown format, unmatched keys, wrong family)."""

    type = "lora_error"


class FamilyMismatchError(LCMError):
    """Two things made for different model families met (SDXL LoRA on SD1.5, ...)."""

    type = "family_mismatch"


class Interrupted(LCMError):
    """The user asked to stop; raised at the next step boundary."""

    type = "interrupted"


class WorkflowError(LCMError):
    """A workflow file cannot be read or converted (not JSON, wrong shape, unsupported feature)."""

    type = "invalid_prompt"
