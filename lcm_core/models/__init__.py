"""Model handles and loaders (single-file checkpoints, diffusers folders)."""
