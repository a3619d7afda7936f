"""Frozen-feature probe: logistic regression on all-MiniLM-L6-v2 features ([CLS], pooler, masked mean),
rotten_tomatoes train -> test. Shows which pooled representation the classifier head starts from.

    python benchmarks/feature_probe.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def features(model, tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    from bertkit.data.encoding import collate, encode, inference_batches

    encoded = encode(tokenizer, texts, None, 128)
    width = model.config.hidden_size
    out = {name: np.zeros((len(encoded), width), np.float32) for name in ("cls", "pooler", "mean")}
    with torch.inference_mode():
        for index in inference_batches(encoded.lengths, 128):
            batch = collate(encoded, index, False)
            result = model(**batch)
            hidden = result.last_hidden_state  # [batch, tokens, hidden]
            mask = batch["attention_mask"].unsqueeze(-1).float()  # [batch, tokens, 1]
            out["cls"][index] = hidden[:, 0].numpy()
            out["pooler"][index] = result.pooler_output.numpy()
            out["mean"][index] = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    return out


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel

    from bertkit import load_data
    from bertkit.modeling import load_tokenizer, resolve_checkpoint

    path = resolve_checkpoint("minilm")
    tokenizer, model = load_tokenizer(path), AutoModel.from_pretrained(path).eval()
    train = load_data(SHARED / "rotten_tomatoes" / "train.csv")
    test = load_data(SHARED / "rotten_tomatoes" / "test.csv")
    train_features, test_features = features(model, tokenizer, train.texts), features(model, tokenizer, test.texts)
    for name in train_features:
        probe = LogisticRegression(max_iter=2000).fit(train_features[name], train.labels)
        print(f"{name:7s} test accuracy {probe.score(test_features[name], test.labels):.3f}")


if __name__ == "__main__":
    main()
