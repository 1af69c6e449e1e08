"""Test helpers: model fixtures and the ComfyUI host stand-in."""
