"""The task-independent engine: the training loop over an objective and the batched forward."""
