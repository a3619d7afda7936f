"""Reading, validating, labelling, tokenizing and batching text data."""
