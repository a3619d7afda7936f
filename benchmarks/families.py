"""Per-family speed: bertkit beside transformers.pipeline (prediction) and a tuned Trainer (training), fp32, on a
MiniLM-sized random-init model of every encoder family (issue 20, target 2).

    python benchmarks/families.py [--families bert,roberta,...] [--rows 500] [--repeats 2] [--no-train] [--onnx]
                                  [--limit N] [--workdir DIR] [--corpus-vocab] [--no-write]

Families: bert, roberta, xlm-roberta, camembert, electra, distilbert, mpnet, albert, deberta-v2, modernbert (all
by default). The Trainer peer needs accelerate (the bench extra: pip install -e '.[bench]').

For each family a model is built in-process under --workdir (default: a temporary folder; a folder already
built there is reused): a tokenizer trained by the `tokenizers` library on the rotten_tomatoes train texts
with a real-sized vocabulary target (WordPiece 30,000 for BERT, ELECTRA, DistilBERT, MPNet; byte-level BPE
50,000 for RoBERTa and ModernBERT; Unigram 30,000 for XLM-R, CamemBERT, ALBERT, DeBERTa-v2; the corpus caps
the real size, reported as "tokenizer vocab"; tokens per text come out near MiniLM's own tokenizer's), wrapped
in the family's own fast tokenizer class, and a seeded random-init sequence classifier (labels negative/positive)
of 6 layers, hidden 384, 12 heads, intermediate 1536, 512 positions (ALBERT and ELECTRA: embeddings 128;
DeBERTa-v2: the v3 relative-attention config; ModernBERT: its own 1.5x GLU intermediate, 576, and its local /
global attention), whose embedding matrix has the published checkpoints' row count (30,522 for BERT, 250,002
for XLM-R...; --corpus-vocab: the tokenizer's) so that the optimizer's work is the real model's. That base is
fine-tuned by bertkit on 64 rows for one epoch and saved, so that the pipeline and bertkit predict with the
same weights from the same (bertkit, and plain Hugging Face) folder.

Prediction: texts/s on the 1,066 rotten_tomatoes test sentences (--limit: the first N), best of --repeats
after a warm-up on 128 texts; the pipeline at batch 32, bertkit at batch 64 (as in predict_speed.py), both
truncating at 128 tokens and both fp32. "packed" says whether bertkit's prediction ran its packed forward;
"agree" is the share of texts both give the same label (the same weights: near 1.0). With --onnx the folder's
ONNX graphs (exported through the packed forward, fp32 and dynamic int8, as `bertkit train` writes them) are
timed the same way; their "agree" is with the pipeline's labels (int8 on a near-random model flips near-ties). Training (unless
--no-train): bertkit's fit against a tuned transformers.Trainer (train_speed.py's peer) on the same --rows
rows x 1 epoch, batch 32, learning rate 1e-4, max_length 128, fp32, the config's dropout, no R-Drop, each
run a fresh subprocess; examples/s over the training loop only (no model load, no evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table, timed  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RT = SHARED / "rotten_tomatoes"
SIZE = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536}
LABELS = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
SEED = 0
MAX_LENGTH = 128


# Tokenizers, trained on real text ------------------------------------------------------------------------


def train_texts() -> list[str]:
    from bertkit import load_data

    return list(load_data(RT / "train.csv").texts)


def wordpiece_vocab(texts: list[str], specials: list[str], size: int = 30000) -> dict[str, int]:
    """A lowercase WordPiece vocabulary (BERT's trainer) with ``specials`` first, in order."""
    from tokenizers import BertWordPieceTokenizer

    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(texts, vocab_size=size, min_frequency=2, special_tokens=specials, show_progress=False)
    return trainer.get_vocab()


def unigram_vocab(texts: list[str], specials: list[str], unk: str, size: int = 30000) -> list[tuple[str, float]]:
    """A SentencePiece-style Unigram vocabulary ((piece, log-probability) with ``specials`` first, score 0)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()])
    trainer = trainers.UnigramTrainer(vocab_size=size, special_tokens=specials, unk_token=unk, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return [(piece, float(score)) for piece, score in json.loads(tokenizer.to_str())["model"]["vocab"]]


def byte_bpe(texts: list[str], specials: list[str], folder: Path, size: int = 50000) -> Any:
    """A byte-level BPE (GPT-2's / RoBERTa's) trained with ``specials`` first; vocab.json and merges.txt in
    ``folder``; returns the `tokenizers` object."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=size, min_frequency=2, special_tokens=specials, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    return bpe


def roberta_tokenizer(texts: list[str], scratch: Path) -> Any:
    from transformers import RobertaTokenizer

    byte_bpe(texts, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], scratch)
    return RobertaTokenizer(vocab=str(scratch / "vocab.json"), merges=str(scratch / "merges.txt"))


def modernbert_tokenizer(texts: list[str], scratch: Path) -> Any:
    """ModernBERT's kind: byte-level BPE with BERT's special tokens, "[CLS] text [SEP]"."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    bpe = byte_bpe(texts, specials, scratch)._tokenizer
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
        mask_token="[MASK]", model_input_names=["input_ids", "attention_mask"],
    )  # fmt: skip


# Families ------------------------------------------------------------------------------------------------

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_IDS = {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "max_position_embeddings": 514}


@dataclass
class Family:
    """How to build one encoder family: its tokenizer (from the training texts and a scratch folder) and its
    config class and fields (``vocab_size`` is added from the tokenizer)."""

    label: str
    tokenizer: Callable[[list[str], Path], Any]
    config_class: str
    fields: dict[str, Any] = field(default_factory=dict)
    embeddings: int = 0
    """Rows of the published checkpoints' embedding matrix (unless --corpus-vocab, the model's vocab_size when
    the trained tokenizer is smaller: the parameter count, and so the optimizer's work, of the real thing)."""


def _tokenizer_class(name: str) -> Any:
    import transformers

    return getattr(transformers, name)


FAMILIES: dict[str, Family] = {
    "bert": Family(
        "BERT",
        lambda t, _: _tokenizer_class("BertTokenizer")(vocab=wordpiece_vocab(t, BERT_SPECIALS)),
        "BertConfig",
        SIZE | {"max_position_embeddings": 512},
        30522,
    ),
    "roberta": Family(
        "RoBERTa",
        roberta_tokenizer,
        "RobertaConfig",
        SIZE | ROBERTA_IDS | {"type_vocab_size": 1},
        50265,
    ),
    "xlm-roberta": Family(
        "XLM-R",
        lambda t, _: _tokenizer_class("XLMRobertaTokenizer")(
            vocab=unigram_vocab(t, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<unk>")
        ),
        "XLMRobertaConfig",
        SIZE | ROBERTA_IDS | {"type_vocab_size": 1},
        250002,
    ),
    "camembert": Family(
        "CamemBERT",
        lambda t, _: _tokenizer_class("CamembertTokenizer")(
            vocab=unigram_vocab(
                t, ["<s>NOTUSED", "<pad>", "</s>NOTUSED", "<unk>", "<unk>NOTUSED", "<s>", "</s>", "<mask>"], "<unk>"
            )
        ),
        "CamembertConfig",
        SIZE | ROBERTA_IDS | {"type_vocab_size": 1, "bos_token_id": 5, "eos_token_id": 6},
        32005,
    ),
    "electra": Family(
        "ELECTRA",
        lambda t, _: _tokenizer_class("ElectraTokenizer")(vocab=wordpiece_vocab(t, BERT_SPECIALS)),
        "ElectraConfig",
        SIZE | {"max_position_embeddings": 512, "embedding_size": 128},
        30522,
    ),
    "distilbert": Family(
        "DistilBERT",
        lambda t, _: _tokenizer_class("DistilBertTokenizer")(vocab=wordpiece_vocab(t, BERT_SPECIALS)),
        "DistilBertConfig",
        {"dim": 384, "n_layers": 6, "n_heads": 12, "hidden_dim": 1536, "max_position_embeddings": 512},
        30522,
    ),
    "mpnet": Family(
        "MPNet",
        lambda t, _: _tokenizer_class("MPNetTokenizer")(
            vocab=wordpiece_vocab(t, ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"])
        ),
        "MPNetConfig",
        SIZE | ROBERTA_IDS,
        30527,
    ),
    "albert": Family(
        "ALBERT",
        lambda t, _: _tokenizer_class("AlbertTokenizer")(
            vocab=unigram_vocab(t, ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], "<unk>")
        ),
        "AlbertConfig",
        SIZE
        | {
            "embedding_size": 128,
            "max_position_embeddings": 512,
            "pad_token_id": 0,
            "bos_token_id": 2,
            "eos_token_id": 3,
        },
        30000,
    ),
    "deberta-v2": Family(
        "DeBERTa-v2 (v3 config)",
        lambda t, _: _tokenizer_class("DebertaV2Tokenizer")(
            vocab=unigram_vocab(t, ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"], "[UNK]")
        ),
        "DebertaV2Config",
        SIZE
        | {
            "max_position_embeddings": 512,
            "relative_attention": True,
            "position_buckets": 256,
            "max_relative_positions": -1,
            "pos_att_type": ["p2c", "c2p"],
            "position_biased_input": False,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "type_vocab_size": 0,
            "layer_norm_eps": 1e-7,
            "pad_token_id": 0,
        },
        128100,
    ),
    "modernbert": Family(
        "ModernBERT",
        modernbert_tokenizer,
        "ModernBertConfig",
        SIZE
        | {
            "intermediate_size": 576,
            "max_position_embeddings": 512,
            "global_attn_every_n_layers": 3,
            "local_attention": 128,
            "unk_token_id": 0,
            "cls_token_id": 1,
            "sep_token_id": 2,
            "pad_token_id": 3,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "classifier_pooling": "cls",
        },
        50368,
    ),
}


# Models --------------------------------------------------------------------------------------------------


def build_base(name: str, folder: Path, texts: list[str], corpus_vocab: bool = False) -> Path:
    """A seeded random-init 2-label sequence classifier of family ``name`` with its trained tokenizer, saved as a
    Hugging Face folder (skipped when ``folder`` already holds one); embedding rows: the published size, or
    the tokenizer's with ``corpus_vocab``."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification

    family = FAMILIES[name]
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = family.tokenizer(texts, Path(scratch))
    rows = len(tokenizer) if corpus_vocab else max(len(tokenizer), family.embeddings)
    config = getattr(transformers, family.config_class)(**family.fields, vocab_size=rows, **LABELS)
    torch.manual_seed(SEED)
    model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_bertkit(base: Path, folder: Path) -> Path:
    """A bertkit folder on ``base``: one epoch on 64 rotten_tomatoes rows (the weights stay near random; what
    matters is that the pipeline and bertkit load the same ones)."""
    if (folder / "bertkit.json").is_file():
        return folder
    from bertkit import TextClassifier, load_data

    clf = TextClassifier(model=str(base), epochs=1, max_train_rows=64, batch_size=32, precision="fp32",
                         classifier_pooling="cls", seed=SEED, progress=False)  # fmt: skip
    clf.fit(load_data(RT / "train.csv")).save(folder)
    return folder


def build(name: str, workdir: Path, corpus_vocab: bool = False) -> tuple[Path, Path]:
    """(base folder, bertkit folder) of family ``name`` under ``workdir``."""
    folder = workdir / (f"{name}-corpus-vocab" if corpus_vocab else name)
    base = build_base(name, folder / "base", train_texts(), corpus_vocab)
    return base, build_bertkit(base, folder / "bertkit")


# Prediction ----------------------------------------------------------------------------------------------


def predict_speed(folder: Path, texts: list[str], repeats: int, onnx: bool = False) -> dict[str, Any]:
    """Pipeline and bertkit texts/s on ``texts`` (fp32, same folder), whether bertkit ran packed, label agreement
    and mean tokens per text; with ``onnx`` the ONNX fp32 and int8 backends too (:func:`onnx_speed`)."""
    import torch
    from transformers import pipeline

    from bertkit import TextClassifier

    peer = pipeline("text-classification", model=str(folder), device=-1, dtype=torch.float32)
    peer_kwargs = {"batch_size": 32, "truncation": True, "max_length": MAX_LENGTH}
    peer(texts[:128], **peer_kwargs)  # warm-up
    peer_seconds, peer_out = timed(lambda: peer(texts, **peer_kwargs), repeats)
    clf = TextClassifier.load(folder, device="cpu", precision="fp32")
    clf.predict_batch_size = 64
    assert next(clf.model_.parameters()).dtype == torch.float32 and peer.model.dtype == torch.float32
    clf.predict_proba(texts[:128])  # warm-up
    seconds, proba = timed(lambda: clf.predict_proba(texts), repeats)
    ours = np.asarray(clf.classes_, dtype=object)[np.argmax(proba, axis=1)]
    agree = float(np.mean([o["label"] == y for o, y in zip(peer_out, ours, strict=True)]))
    lengths = [len(ids) for ids in peer.tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    speed = {"packed": clf.packed_forward_, "vocab": len(peer.tokenizer), "tokens": float(np.mean(lengths)),
             "pipeline": len(texts) / peer_seconds, "bertkit": len(texts) / seconds, "agree": agree}  # fmt: skip
    if onnx:
        speed |= onnx_speed(clf, folder, texts, repeats, [o["label"] for o in peer_out])
    return speed


def onnx_speed(clf: Any, folder: Path, texts: list[str], repeats: int, peer_labels: list[str]) -> dict[str, Any]:
    """Texts/s of the folder's ONNX fp32 and int8 graphs (exported through the packed forward, as `bertkit
    train` exports them, when not there yet) and their label agreement with the pipeline."""
    from bertkit import TextClassifier
    from bertkit.onnx_forward import FILES, ONNX_DIR

    if not (folder / ONNX_DIR / FILES["int8"]).is_file():
        clf.export_onnx(folder, quantize="int8")  # writes onnx/model.onnx and onnx/model-int8.onnx
    speed: dict[str, Any] = {}
    for backend in ("onnx", "onnx-int8"):
        model = TextClassifier.load(folder, device="cpu", backend=backend)
        model.predict_batch_size = 64
        model.predict_proba(texts[:128])  # warm-up
        seconds, proba = timed(lambda m=model: m.predict_proba(texts), repeats)
        labels = np.asarray(model.classes_, dtype=object)[np.argmax(proba, axis=1)]
        speed[backend] = len(texts) / seconds
        speed[f"{backend} agree"] = float(np.mean(labels == np.asarray(peer_labels, dtype=object)))
    return speed


# Training (each run a fresh subprocess) ------------------------------------------------------------------


def train_data(rows: int, seed: int = 1):
    """The first ``rows`` of a seeded shuffle of rotten_tomatoes train (train_speed.py's), and 64 validation
    rows for bertkit's per-epoch evaluation (not timed)."""
    from bertkit import load_data

    train = load_data(RT / "train.csv")
    pick = np.sort(np.random.default_rng(seed).permutation(len(train))[:rows])
    return train.subset(pick), load_data(RT / "validation.csv").subset(np.arange(64))


def worker_bertkit(base: Path, rows: int) -> dict[str, float]:
    from bertkit import TextClassifier

    train, validation = train_data(rows)
    clf = TextClassifier(model=str(base), epochs=1, batch_size=32, learning_rate=1e-4, max_length=MAX_LENGTH,
                         seed=1, precision="fp32", classifier_pooling="cls", rdrop=0.0, progress=False)  # fmt: skip
    clf.fit(train, eval_set=validation)
    seconds = sum(r["train_seconds"] for r in clf.history_)
    return {"train_seconds": seconds, "samples_per_s": len(train) / seconds}


def worker_trainer(base: Path, rows: int) -> dict[str, float]:
    """The tuned Trainer of train_speed.py (transformers 5 argument names), fp32, no evaluation; it needs
    accelerate (the bench extra)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    train, _ = train_data(rows)
    tokenizer = AutoTokenizer.from_pretrained(base)
    # A list of feature dicts (no `datasets` needed): the Trainer's length grouping reads their input_ids.
    encoded = tokenizer(list(train.texts), truncation=True, max_length=MAX_LENGTH)
    ds = [{k: v[i] for k, v in encoded.items()} | {"labels": int(label == "positive")}
          for i, label in enumerate(train.labels)]  # fmt: skip
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2, dtype=torch.float32)
    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(
            output_dir=out, num_train_epochs=1, per_device_train_batch_size=32, learning_rate=1e-4,
            weight_decay=0.01, warmup_steps=0.1, eval_strategy="no", save_strategy="no", report_to="none", seed=1,
            dataloader_pin_memory=False, train_sampling_strategy="group_by_length", disable_tqdm=True,
            logging_strategy="no", bf16=False, use_cpu=True,
        )  # fmt: skip
        trainer = Trainer(model=model, args=arguments, train_dataset=ds,
                          data_collator=DataCollatorWithPadding(tokenizer))  # fmt: skip
        started = time.perf_counter()
        result = trainer.train()
        seconds = min(result.metrics["train_runtime"], time.perf_counter() - started)
    return {"train_seconds": seconds, "samples_per_s": len(train) / seconds}


def run_worker(engine: str, base: Path, rows: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", engine, "--base", str(base), "--rows", str(rows)]
    out = subprocess.run(command, capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{engine} training failed:\n{out.stderr[-3000:]}")
    return json.loads(line[7:])


# The run -------------------------------------------------------------------------------------------------


def one_family(name: str, workdir: Path, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """The table row of family ``name``: build, predict, train (each step timed on the console)."""
    started = time.perf_counter()
    base, folder = build(name, workdir, args.corpus_vocab)
    print(f"[{name}] built in {time.perf_counter() - started:.0f} s", flush=True)
    speed = predict_speed(folder, texts, args.repeats, args.onnx)
    row = {"family": FAMILIES[name].label, "packed?": "yes" if speed["packed"] else "no",
           "tokenizer vocab": speed["vocab"], "tokens/text": speed["tokens"], "pipeline texts/s": speed["pipeline"],
           "bertkit texts/s": speed["bertkit"], "predict ratio": f"{speed['bertkit'] / speed['pipeline']:.2f}x",
           "agree": speed["agree"]}  # fmt: skip
    if args.onnx:
        row |= {"onnx ratio": f"{speed['onnx'] / speed['pipeline']:.2f}x", "onnx agree": speed["onnx agree"],
                "int8 ratio": f"{speed['onnx-int8'] / speed['pipeline']:.2f}x",
                "int8 agree": speed["onnx-int8 agree"]}  # fmt: skip
    print(f"[{name}] predicted ({time.perf_counter() - started:.0f} s so far): {row}", flush=True)
    if args.train:
        peer = run_worker("trainer", base, args.rows)["samples_per_s"]
        ours = run_worker("bertkit", base, args.rows)["samples_per_s"]
        row |= {"Trainer ex/s": peer, "bertkit ex/s": ours, "train ratio": f"{ours / peer:.2f}x"}
    print(f"[{name}] done in {time.perf_counter() - started:.0f} s", flush=True)
    return row


def failed_row(name: str, error: BaseException, train: bool) -> dict[str, Any]:
    row = {"family": FAMILIES[name].label, "packed?": "failed", "tokenizer vocab": "", "tokens/text": "",
           "pipeline texts/s": "", "bertkit texts/s": "", "predict ratio": f"{type(error).__name__}", "agree": ""}  # fmt: skip
    if train:
        row |= {"Trainer ex/s": "", "bertkit ex/s": "", "train ratio": ""}
    return row


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default="bert,roberta,xlm-roberta,camembert,electra,distilbert,mpnet,albert,"
                        "deberta-v2,modernbert", help=f"a subset of {', '.join(FAMILIES)}")  # fmt: skip
    parser.add_argument("--rows", type=int, default=500, help="training rows (1 epoch)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="predict only the first N test texts (smoke runs)")
    parser.add_argument("--no-train", dest="train", action="store_false")
    parser.add_argument("--onnx", action="store_true", help="also time the ONNX fp32 and int8 backends")
    parser.add_argument("--corpus-vocab", action="store_true",
                        help="embedding rows = the trained tokenizer's vocabulary, not the published size")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None, help="where models are built (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.families.split(",")) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    return args


def report(rows: list[dict[str, Any]], args: argparse.Namespace, failures: list[str], n_texts: int) -> None:
    table = markdown_table(rows)
    print(table)
    for failure in failures:
        print(failure, file=sys.stderr)
    if args.no_write:
        return
    notes = (
        f"MiniLM-sized random-init models (6 layers, hidden 384), tokenizers trained on rotten_tomatoes train; "
        f"prediction on {n_texts} rotten_tomatoes test texts, best of {args.repeats}, fp32, max_length "
        f"{MAX_LENGTH}, pipeline batch 32, bertkit batch 64"
        + (f"; training {args.rows} rows x 1 epoch, batch 32, fp32, vs the tuned Trainer." if args.train else ".")
        + "".join(f"\n\n{failure}" for failure in failures)
    )
    append_results("Per-family speed: bertkit vs pipeline / Trainer (fp32)", table, notes)


def main() -> None:
    args = parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight loading and saving bars, per model
    if args.worker:
        result = {"bertkit": worker_bertkit, "trainer": worker_trainer}[args.worker](args.base, args.rows)
        print("RESULT " + json.dumps(result), flush=True)
        return
    from bertkit import load_data

    texts = list(load_data(RT / "test.csv").texts)[: args.limit]
    rows, failures = [], []
    with tempfile.TemporaryDirectory(prefix="bertkit-families-") as scratch:
        workdir = args.workdir or Path(scratch)
        for name in args.families.split(","):
            try:
                rows.append(one_family(name, workdir, texts, args))
            except Exception as error:  # one family's failure is a result too: report it, go on
                failures.append(f"{FAMILIES[name].label} failed: {type(error).__name__}: {error}")
                print(failures[-1], file=sys.stderr, flush=True)
                rows.append(failed_row(name, error, args.train))
    report(rows, args, failures, len(texts))


if __name__ == "__main__":
    main()
