"""Sequence (text and text-pair) classification: the estimator, its objective, metrics and report."""
