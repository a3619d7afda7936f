"""Calibration and 90% prediction sets of trained classifiers on held-out data.

    python benchmarks/calibration.py --model NAME=DIR=EVAL_FILE[=CALIBRATION_FILE] [--model ...] [--coverage 0.9]

For each model: ECE (15 equal-width bins of the top-class probability) and Brier score on EVAL_FILE without and
with the model's temperature, the temperature, accuracy, and the empirical coverage and mean size of the
split-conformal prediction sets at --coverage, and the ECE noise floor: the ECE a perfectly calibrated model
with the same calibrated probabilities would show on as many rows (labels drawn from those probabilities, 1,000
draws; mean and 90th percentile), which says how low a measured ECE can be expected to go on that file. A model
trained before bertkit calibrated (no temperature in its
bertkit.json) is calibrated here on CALIBRATION_FILE, the validation data its training run used, which is what
training does now (`TextClassifier.calibrate`: temperature and conformity scores from that data).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_results, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def ece_noise_floor(proba, draws: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, 90th percentile) ECE of a perfectly calibrated model with class probabilities ``proba`` [n, classes]:
    each draw takes every row's label from its own probabilities, so any ECE left is sampling noise of n rows."""
    import numpy as np

    from bertkit.classification.calibration import expected_calibration_error

    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(proba, axis=1)
    values = []
    for _ in range(draws):
        u = rng.random((len(proba), 1))
        labels = np.minimum((u > cumulative).sum(axis=1), proba.shape[1] - 1)  # [n]: a class drawn per row
        values.append(expected_calibration_error(proba, labels, "classification"))
    return float(np.mean(values)), float(np.quantile(values, 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="NAME=DIR=EVAL_FILE[=CALIBRATION_FILE]")
    parser.add_argument("--coverage", type=float, default=0.9)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from bertkit import TextClassifier, load_data

    rows = []
    for item in args.model:
        name, folder, eval_file, *rest = item.split("=")
        classifier = TextClassifier.load(folder, device="cpu")
        calibrated_here = "no (at training)"
        if rest:
            classifier.calibrate(load_data(rest[0]))
            calibrated_here = f"yes, on {Path(rest[0]).name}"
        n_calibration = len(classifier.conformal_scores_)
        data = load_data(eval_file)
        report = classifier.evaluate(data, coverage=args.coverage).to_dict()
        floor = ece_noise_floor(classifier.decision_scores(data)) if classifier.task_ == "classification" else None
        metrics, calibration = report, report.get("calibration", {})
        slack = math.ceil((n_calibration + 1) * args.coverage) / (n_calibration + 1)
        rows.append({
            "model": name, "evaluated on": f"{Path(eval_file).parent.name}/{Path(eval_file).name}",
            "rows": report["n_examples"], "accuracy": metrics.get("accuracy"),
            "temperature": calibration.get("temperature"),
            "ECE before": calibration.get("ece_uncalibrated"), "ECE after": calibration.get("ece_calibrated"),
            "ECE noise floor (mean / p90)": f"{floor[0]:.4f} / {floor[1]:.4f}" if floor else None,
            "Brier before": calibration.get("brier_uncalibrated"), "Brier after": calibration.get("brier_calibrated"),
            "calibration rows (n)": n_calibration, "calibrated here": calibrated_here,
            f"set coverage @{args.coverage}": metrics.get("set_coverage"),
            "guaranteed mean coverage": f"[{args.coverage}, {slack + 1 / (n_calibration + 1):.4f}]",
            "mean set size": metrics.get("mean_set_size"),
        })  # fmt: skip
    table = markdown_table(rows)
    print(table)
    if not args.no_write:
        notes = (
            "ECE: 15 equal-width bins of the top-class probability, sum of |bin|/n x |accuracy - mean confidence|. "
            "Brier: mean over rows of the summed squared difference to the one-hot label. Prediction sets: split "
            "conformal, LAC score 1 - p(true label) on the calibration rows; for exchangeable data the expected "
            "coverage lies in the bracket shown (at least the asked coverage, less than it + 1/(n+1) without "
            "ties); a test set of m rows adds sampling noise of about sqrt(0.09/m) (0.009 at 1,066 rows)."
        )
        append_results(f"Calibration and {args.coverage:.0%} prediction sets on held-out data", table, notes)


if __name__ == "__main__":
    main()
