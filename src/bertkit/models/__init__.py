"""Model folders and checkpoints: resolution, model kinds, building heads, metadata, packed forwards."""
