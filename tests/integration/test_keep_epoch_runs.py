"""Which epoch's weights a scripted run keeps under each --keep-epoch rule (moved from tests/unit/test_keep_epoch.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_same_weights


@pytest.mark.parametrize(
    ("keep_epoch", "share", "kept"),
    [("auto", 0.7, 3), ("auto", 0.99, 1), ("auto", None, 1), ("best", 0.7, 1), ("last", 0.99, 3)],
)
def test_fit_keeps_the_epoch_the_rule_names(scripted_fit, keep_epoch, share, kept):
    result, snapshots, logits_seen, calls, weights = scripted_fit(keep_epoch, share)
    assert result.best_epoch == 1 and result.kept_epoch == kept
    assert_same_weights(weights, snapshots[kept - 1])
    np.testing.assert_array_equal(result.validation_logits, logits_seen[kept - 1])
    if keep_epoch == "auto" and share is not None:  # asked once, best epoch's outputs against the last's
        assert len(calls) == 1
        np.testing.assert_array_equal(calls[0][0], logits_seen[0])
        np.testing.assert_array_equal(calls[0][1], logits_seen[2])
        assert result.best_win_share == share
    else:
        assert calls == [] and result.best_win_share is None


def test_a_best_last_epoch_is_kept_without_asking(scripted_fit):
    result, snapshots, _, calls, weights = scripted_fit("auto", 0.99, scores=(0.4, 0.5, 0.9))
    assert (result.best_epoch, result.kept_epoch) == (3, 3) and calls == []
    assert_same_weights(weights, snapshots[2])
