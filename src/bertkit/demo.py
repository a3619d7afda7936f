"""``bertkit demo``: the whole workflow on a small sentiment set that ships with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEMO_SENTENCES = [
    "An absolute delight from start to finish, with a cast that clearly loved every scene.",
    "I checked my watch every ten minutes; the plot goes nowhere and the jokes fall flat.",
    "Not bad at all: the second half is genuinely moving.",
    "The effects are cheap and the dialogue is painful to sit through.",
]


def demo_file(name: str) -> Path:
    return Path(str(resources.files("bertkit") / "demo_data" / name))


def run_demo(output: Path, epochs: int = 4) -> None:
    """Train the default model on the packaged demo set, evaluate on its test split, predict a few texts."""
    from rich.console import Console

    from bertkit.classification.estimator import TextClassifier
    from bertkit.data.dataset import load_file

    console = Console(stderr=True)
    train = load_file(demo_file("sentiment_train.csv"))
    test = load_file(demo_file("sentiment_test.csv"))
    console.print(f"[bold]bertkit demo[/bold]: fine-tuning the built-in MiniLM on {len(train)} reviews")
    classifier = TextClassifier(epochs=epochs, batch_size=16, learning_rate=1e-4).fit(train, output_dir=output)
    classifier.save(output)
    report = classifier.evaluate(test)
    report.save(output / "report", history=classifier.history_)
    report.print(Console())
    for text, label, proba in zip(
        DEMO_SENTENCES,
        classifier.predict(DEMO_SENTENCES),
        classifier.predict_proba(DEMO_SENTENCES),
        strict=True,
    ):
        print(f"{label:>9} ({proba.max():.2f})  {text}")
    console.print(f'model saved to {output}; try: bertkit predict {output} "a wonderful film"')
