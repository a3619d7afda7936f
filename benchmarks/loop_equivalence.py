"""Does bertkit's training loop take the same steps as transformers.Trainer? Same initial weights, same batches
(a fixed order), dropout off, fp32: the weights after training should agree to float rounding.

    python benchmarks/loop_equivalence.py [--rows 320] [--epochs 2]   (needs the bench extra)

When they agree, any accuracy difference between the two engines in benchmarks/accuracy.py comes from their
random streams (batch order, dropout masks, head initialisation), not from the optimisation itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import datasets
    import torch
    import transformers
    from torch.utils.data import SequentialSampler

    import bertkit.engine.loop as training
    from bertkit import load_data
    from bertkit.classification.objective import SequenceObjective
    from bertkit.config import TrainConfig
    from bertkit.data.encoding import encode
    from bertkit.models.checkpoints import resolve_checkpoint

    transformers.logging.set_verbosity_error()
    path = resolve_checkpoint("minilm")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    data = load_data(SHARED / "glue" / "CoLA" / "train.tsv")
    texts = data.texts[: args.rows]
    labels = np.array([int(label) for label in data.labels[: args.rows]])

    def fresh_model():
        return transformers.AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        )

    torch.manual_seed(0)
    initial = fresh_model().state_dict()
    # Both engines see the rows in file order, cut into consecutive batches, every epoch.
    order = [np.arange(i, min(i + args.batch_size, len(texts))) for i in range(0, len(texts), args.batch_size)]
    training.training_batches = lambda lengths, size, rng, **kwargs: order

    ours = fresh_model()
    ours.load_state_dict(initial)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                         warmup_ratio=0.1, weight_decay=0.01, precision="fp32")  # fmt: skip
    encoded = encode(tokenizer, texts, None, 128)
    objective = SequenceObjective("classification", labels)
    training.fit(ours, encoded, config, objective, device=torch.device("cpu"), run=training.RunOptions(progress=False))

    peer = fresh_model()
    peer.load_state_dict(initial)
    dataset = datasets.Dataset.from_dict({"text": texts, "label": labels.tolist()}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True, remove_columns=["text"]
    )

    class InOrder(transformers.Trainer):
        def _get_train_sampler(self, *unused, **unused_too):
            return SequentialSampler(self.train_dataset)

    with tempfile.TemporaryDirectory() as out:
        settings = transformers.TrainingArguments(
            output_dir=out, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate, weight_decay=0.01, warmup_steps=0.1, lr_scheduler_type="linear",
            save_strategy="no", report_to="none", seed=0, dataloader_pin_memory=False, disable_tqdm=True,
            logging_strategy="no",
        )  # fmt: skip
        InOrder(
            model=peer,
            args=settings,
            train_dataset=dataset,
            data_collator=transformers.DataCollatorWithPadding(tokenizer),
        ).train()

    rows = []
    ours_state, peer_state = ours.state_dict(), peer.state_dict()
    for name in ("classifier.weight", "bert.pooler.dense.weight", "bert.encoder.layer.5.output.dense.weight",
                 "bert.encoder.layer.0.attention.self.query.weight", "bert.embeddings.word_embeddings.weight"):  # fmt: skip
        moved = float((peer_state[name] - initial[name]).abs().max())
        differs = float((ours_state[name] - peer_state[name]).abs().max())
        rows.append({"tensor": name, "max change in training": moved, "largest difference bertkit vs Trainer": differs})
    worst = max(float((ours_state[k] - peer_state[k]).abs().max()) for k in peer_state)
    rows.append({"tensor": f"all {len(peer_state)} tensors (worst)", "max change in training": float("nan"),
                 "largest difference bertkit vs Trainer": worst})  # fmt: skip
    table = markdown_table(rows)
    print(table)
    if not args.no_write:
        append_results(
            "Training loop equivalence: bertkit vs transformers.Trainer, same batches, no dropout",
            table,
            f"all-MiniLM-L6-v2, the first {len(texts)} CoLA train sentences in file order, batch {args.batch_size}, "
            f"{args.epochs} epochs, lr {args.learning_rate:g}, warm-up 0.1, weight decay 0.01, fp32, dropout 0.",
        )


if __name__ == "__main__":
    main()
