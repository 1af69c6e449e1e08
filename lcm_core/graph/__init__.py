"""Headless runner for ComfyUI workflows made of this pack's nodes.

`formats` reads workflow files (API, UI, PNG), `convert` turns UI graphs into API
prompts as the frontend does, `validate` answers in ComfyUI's error shape, `execute`
runs with ComfyUI's caching semantics and emits `events`, `report` writes JSON/JUnit,
`cli` is `lcm-run`. Importing this package is cheap: no torch.
"""
