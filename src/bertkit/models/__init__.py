"""Model folders and checkpoints, one concept per module.

- :mod:`~bertkit.models.checkpoints`: resolve a name (alias, folder, hub id); load its tokenizer and config.
- :mod:`~bertkit.models.heads`: build a fresh task head on an encoder, or load a fine-tuned model, per kind.
- :mod:`~bertkit.models.pooling`: mean pooling for classifiers on sentence-embedding checkpoints.
- :mod:`~bertkit.models.folders`: save a model folder and read its ``bertkit.json``.
- :mod:`~bertkit.models.folder_check`: check a folder whole before it is loaded (config, weights, tokenizer,
  bertkit.json, and that they agree).
- :mod:`~bertkit.models.kinds`: the model kinds and the one function that tells a folder's kind.
- :mod:`~bertkit.models.packed`: the packed (padding-free) inference forward of BERT classifiers.
"""
