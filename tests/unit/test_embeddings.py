"""TextEmbedder against a direct AutoModel forward, and `bertkit embed`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import sentiment_examples

from bertkit import ConfigError, DataError, TextEmbedder
from bertkit.cli import main

TEXTS = ["great film", "a very long and quite boring story about the music and the acting", "dull", "the plot is okay"]


def reference(folder, texts, pooling, layers=(-1,)):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    rows = []
    with torch.inference_mode():
        for text in texts:  # one at a time: no padding at all
            inputs = tokenizer([text], return_tensors="pt")
            out = model(**inputs, output_hidden_states=True)
            hidden = torch.stack([out.hidden_states[i] for i in layers]).mean(0)[0]
            rows.append({"cls": hidden[0], "mean": hidden.mean(0), "pooler": out.pooler_output[0]}[pooling])
    return torch.stack(rows).numpy()


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
def test_pooled_embeddings_match_a_direct_forward(tiny_bert, pooling):
    got = TextEmbedder(str(tiny_bert), pooling=pooling, batch_size=3).fit().transform(TEXTS)
    np.testing.assert_allclose(got, reference(tiny_bert, TEXTS, pooling), atol=1e-5)


def test_layer_average_and_normalize(tiny_bert):
    got = TextEmbedder(str(tiny_bert), pooling="mean", layers=[1, 2]).fit().transform(TEXTS)
    np.testing.assert_allclose(got, reference(tiny_bert, TEXTS, "mean", layers=(1, 2)), atol=1e-5)
    unit = TextEmbedder(str(tiny_bert), normalize=True).fit().transform(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)


def test_token_embeddings_give_tokens_and_states(tiny_bert):
    embedder = TextEmbedder(str(tiny_bert)).fit()
    (tokens, states), *_ = embedder.token_embeddings(["great film"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "great" in tokens
    assert states.shape == (len(tokens), 32)


def test_fine_tuned_bertkit_model_embeds(tiny_bert, tmp_path):
    from bertkit import TextClassifier

    texts, labels = sentiment_examples(32)
    TextClassifier(str(tiny_bert), epochs=1, progress=False).fit(texts, labels).save(tmp_path)
    assert TextEmbedder(str(tmp_path)).fit().transform(TEXTS).shape == (4, 32)


def test_bad_arguments(tiny_bert):
    with pytest.raises(ConfigError, match="--pooling must be one of"):
        TextEmbedder(str(tiny_bert), pooling="max").fit()
    with pytest.raises(ConfigError, match="--layer 9 is out of range for a model with 2 layers"):
        TextEmbedder(str(tiny_bert), layers=[9]).fit()
    with pytest.raises(DataError, match="single string"):
        TextEmbedder(str(tiny_bert)).fit().transform("one text")


def test_embed_cli_writes_npy_and_parquet(tiny_bert, tmp_path, capsys):
    import pandas as pd

    data = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(data, index=False)
    main(["embed", str(tiny_bert), "--data", str(data), "--output", str(tmp_path / "e.npy"), "--pooling", "cls"])
    vectors = np.load(tmp_path / "e.npy")
    np.testing.assert_allclose(vectors, reference(tiny_bert, TEXTS, "cls"), atol=1e-5)
    main(["embed", str(tiny_bert), "--data", str(data), "--output", str(tmp_path / "e.parquet")])
    assert len(pd.read_parquet(tmp_path / "e.parquet")) == 4
    assert "wrote 4 x 32 embeddings" in capsys.readouterr().err


def test_embed_cli_refuses_bad_outputs_and_lengths_and_names_no_flag_it_lacks(tiny_bert, tmp_path, capsys):
    from helpers import fails

    data = tmp_path / "texts.csv"
    data.write_text("id,text\n1,good\n2,\n3,bad\n")
    error = fails(capsys, "embed", tiny_bert, "--data", data, "--output", tmp_path / "e.npy")
    assert "texts.csv line 3: column 'text' is empty; every row needs a text (fix or remove the row)" in error
    assert "--skip-bad-rows" not in error  # embed has no such flag: its rows must line up with the output
    data.write_text("text\ngood\nbad\n")
    assert "--max-length must be a positive integer (got 0)" in fails(
        capsys, "embed", tiny_bert, "--data", data, "--output", tmp_path / "e.npy", "--max-length", "0"
    )
    (tmp_path / "dir.npy").mkdir()
    assert "dir.npy: is a folder" in fails(capsys, "embed", tiny_bert, "--data", data, "--output", tmp_path / "dir.npy")
    assert not (tmp_path / "e.npy").exists()
    main(["embed", str(tiny_bert), "--data", str(data), "--output", str(tmp_path / "e.npy")])
    assert np.load(tmp_path / "e.npy").shape == (2, 32) and not list(tmp_path.glob(".*partial"))
    capsys.readouterr()
    assert "leaves no room for text beside the model's 2 special tokens; give at least 3" in fails(
        capsys, "embed", tiny_bert, "--data", data, "--output", tmp_path / "e.npy", "--max-length", "2"
    )  # [CLS] [SEP] alone would give every text the same vector
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence1,sentence2\ngood,bad\nfine,dull\n")
    error = fails(capsys, "embed", tiny_bert, "--data", pairs, "--output", tmp_path / "p.npy")
    assert "holds text pairs ('sentence1', 'sentence2') and embed writes one vector per text" in error
    main(["embed", str(tiny_bert), "--data", str(pairs), "--output", str(tmp_path / "p.npy"), "--text-column",
          "sentence2"])  # fmt: skip
    assert np.load(tmp_path / "p.npy").shape == (2, 32)


def test_the_pooler_of_a_folder_that_saved_none_is_refused(tiny_bert, tmp_path):
    from transformers import AutoModelForTokenClassification

    tagger = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3)  # no pooler in its weights
    tagger.save_pretrained(tmp_path / "tagger")
    (tmp_path / "tagger" / "vocab.txt").write_bytes((tiny_bert / "vocab.txt").read_bytes())
    with pytest.raises(
        ConfigError, match="tagger: this model has no trained pooler weights; use --pooling mean or cls"
    ):
        TextEmbedder(str(tmp_path / "tagger"), pooling="pooler").fit()
    TextEmbedder(str(tmp_path / "tagger"), pooling="cls").fit()  # its encoder is fine
