"""Token classification (named entities): CoNLL data, word alignment, objective, metrics, estimator."""
