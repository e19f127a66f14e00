"""edge.metrics against hand-computed cases and against scikit-learn as the oracle."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

from edge.errors import EdgeBuildError
from edge.metrics import (
    accuracy,
    classification_metrics,
    compare_to_reference,
    confusion_matrix,
    label_metrics,
    logit_errors,
    per_class_recall,
    top1_agreement,
    uar,
    uf1,
)

# Imbalanced: 6 / 2 / 2 samples. Confusion rows (true) [5,1,0], [1,1,0], [0,1,1].
Y_TRUE = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
Y_PRED = [0, 0, 0, 0, 0, 1, 1, 0, 2, 1]


def _onehot_logits(pred, num_classes):
    logits = np.full((len(pred), num_classes), -1.0)
    logits[np.arange(len(pred)), pred] = 2.0
    return logits


def test_confusion_matrix_rows_are_truth():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[5, 1, 0], [1, 1, 0], [0, 1, 1]]


def test_accuracy_uar_uf1_on_imbalanced_classes():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert accuracy(cm) == pytest.approx(0.7)
    # recall 5/6, 1/2, 1/2 -> UAR 11/18, although accuracy is 0.7
    assert per_class_recall(cm) == pytest.approx([5 / 6, 0.5, 0.5])
    assert uar(cm) == pytest.approx(11 / 18)
    # F1 = 2TP/(2TP+FP+FN): 10/12, 2/5, 2/3 -> UF1 57/90
    assert uf1(cm) == pytest.approx(57 / 90)


def test_absent_class_is_left_out_but_a_predicted_absent_class_counts_in_uf1():
    cm4 = confusion_matrix(Y_TRUE, Y_PRED, 4)  # class 3 neither labelled nor predicted
    assert np.isnan(per_class_recall(cm4)[3])
    assert uar(cm4) == pytest.approx(11 / 18) and uf1(cm4) == pytest.approx(57 / 90)
    pred = list(Y_PRED)
    pred[0] = 3  # a false positive for class 3: recall of 0 drops, UF1 gains a zero F1
    cm = confusion_matrix(Y_TRUE, pred, 4)
    assert uar(cm) == pytest.approx((4 / 6 + 0.5 + 0.5) / 3)
    f1_0 = 2 * 4 / (2 * 4 + 1 + 2)
    assert uf1(cm) == pytest.approx((f1_0 + 0.4 + 2 / 3 + 0.0) / 4)


def test_classification_metrics_per_class_and_support():
    names = ("a", "b", "c", "d")
    m = classification_metrics(_onehot_logits(Y_PRED, 4), Y_TRUE, names)
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["per_class_recall"] == pytest.approx({"a": 5 / 6, "b": 0.5, "c": 0.5, "d": None})
    assert m["support"] == {"a": 6, "b": 2, "c": 2, "d": 0}
    assert m["confusion"][0] == [5, 1, 0, 0]


def test_agreement_and_logit_errors():
    ref = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 0.0]])
    cand = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 1.5], [0.0, 2.0, 1.0], [1.0, 2.0, 0.0]])
    assert top1_agreement(ref, cand) == pytest.approx(0.75)
    err = logit_errors(ref, cand)
    assert err["max_abs_error"] == pytest.approx(1.0)
    assert err["mean_abs_error"] == pytest.approx((0.5 + 1.0 + 1.0) / 12)
    cos1 = (4 + 1.5) / (np.sqrt(5) * np.sqrt(4 + 2.25))
    cos2 = 4 / 5
    assert err["min_cosine"] == pytest.approx(cos2)
    assert err["mean_cosine"] == pytest.approx((1 + cos1 + cos2 + 1) / 4)
    zeros = np.zeros((1, 3))
    assert logit_errors(zeros, zeros)["min_cosine"] == 1.0
    assert logit_errors(zeros, np.ones((1, 3)))["min_cosine"] == 0.0


def test_compare_to_reference_deltas_with_labels():
    names = ("a", "b", "c")
    ref = _onehot_logits(Y_TRUE, 3)  # the reference is always right
    cand = _onehot_logits(Y_PRED, 3)
    out = compare_to_reference(ref, cand, class_names=names, labels=np.array(Y_TRUE))
    assert out["top1_agreement"] == pytest.approx(0.7)
    assert out["reference"]["uar"] == pytest.approx(1.0)
    assert out["delta"]["accuracy"] == pytest.approx(-0.3)
    assert out["delta"]["uar"] == pytest.approx(11 / 18 - 1)
    assert out["delta"]["uf1"] == pytest.approx(57 / 90 - 1)
    assert out["confusion_vs_reference"] == [[5, 1, 0], [1, 1, 0], [0, 1, 1]]
    nolabels = compare_to_reference(ref, cand, class_names=names)
    assert nolabels["labels"] is False and nolabels["delta"] is None


@pytest.mark.parametrize(
    "ref, cand, labels, message",
    [
        (np.zeros((2, 3)), np.zeros((3, 3)), None, "shape"),
        (np.zeros((2, 3)), np.full((2, 3), np.nan), None, "NaN"),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 3]), "labels must lie in"),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.array([0.0, 1.0]), "integer"),
    ],
)
def test_bad_inputs_raise_edge_errors(ref, cand, labels, message):
    with pytest.raises(EdgeBuildError, match=message):
        compare_to_reference(ref, cand, class_names=("a", "b", "c"), labels=labels)


@contextlib.contextmanager
def _no_check():
    """scikit-learn warns when a class is only predicted; that case is what is tested."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _oracle():
    return pytest.importorskip("sklearn.metrics", reason="scikit-learn is the oracle (dev extra)")


CASES = [
    # every class labelled and predicted
    (Y_TRUE, Y_PRED, 3),
    # class 2 only predicted, class 3 only labelled, class 4 neither
    ([0, 0, 1, 1, 3, 3], [0, 2, 1, 1, 0, 3], 5),
    # one class labelled, several predicted
    ([1, 1, 1, 1], [0, 1, 2, 1], 3),
]


@pytest.mark.parametrize("y_true, y_pred, num_classes", CASES)
def test_metrics_match_scikit_learn(y_true, y_pred, num_classes):
    sk = _oracle()
    cm = confusion_matrix(y_true, y_pred, num_classes)
    assert cm.tolist() == sk.confusion_matrix(y_true, y_pred, labels=range(num_classes)).tolist()
    assert accuracy(cm) == pytest.approx(sk.accuracy_score(y_true, y_pred))
    with _no_check():
        assert uar(cm) == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    assert uf1(cm) == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    assert label_metrics(y_true, y_pred, num_classes) == pytest.approx(
        {
            "samples": len(y_true),
            "accuracy": sk.accuracy_score(y_true, y_pred),
            "uar": uar(cm),
            "uf1": sk.f1_score(y_true, y_pred, average="macro"),
        }
    )


@pytest.mark.parametrize("seed", range(20))
def test_random_predictions_match_scikit_learn(seed):
    sk = _oracle()
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 40)), int(rng.integers(2, 7))
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, n))
    logits = rng.standard_normal((n, k))
    logits[np.arange(n), y_pred] += 10.0
    got = classification_metrics(logits, y_true, [str(c) for c in range(k)])
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    with _no_check():
        assert got["uar"] == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    assert got["uf1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    present = np.unique(y_true)
    recall = sk.recall_score(y_true, y_pred, labels=present, average=None)
    assert [got["per_class_recall"][str(c)] for c in present] == pytest.approx(list(recall))
    other = rng.standard_normal((n, k))
    assert top1_agreement(logits, other) == pytest.approx(
        sk.accuracy_score(logits.argmax(1), other.argmax(1))
    )


def test_label_metrics_infers_the_class_count():
    assert label_metrics(Y_TRUE, Y_PRED) == label_metrics(Y_TRUE, Y_PRED, 3)
