"""Domain-classifier detector: how well a model tells current from reference.

The classifier is a ridge regression on the 0/1 domain label (a least-squares linear
discriminant). Its cross-validated predictions are linear in the labels, so the whole
cross-validation can be refitted for a thousand label permutations with one matrix
product per fold. That makes the permutation test exact: the null refits the classifier
exactly as the observed statistic did, and no held-out row ever informs its own score.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.linalg import cho_factor, cho_solve
from scipy.stats import rankdata

from detectors._typing import Float64Array, IntpArray
from detectors._validation import Shape
from detectors.base import BaseDetector, check_int, check_positive_float
from detectors.errors import InvalidInputError
from detectors.permutation import (
    MAX_CHUNK_ELEMENTS,
    PooledGroups,
    null_threshold,
    permutation_p_value,
    permuted_labels,
    row_label_chunks,
)
from detectors.result import DriftResult


def auc_columns(scores: Float64Array, is_current: npt.NDArray[np.bool_]) -> Float64Array:
    """ROC AUC of each column of ``scores`` for the labels in the same column.

    Mann–Whitney form with average ranks for ties; the number of current rows may differ
    from column to column.

    Examples
    --------
    >>> scores = np.array([[0.1, 0.1], [0.2, 0.9], [0.8, 0.2], [0.9, 0.8]])
    >>> labels = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=bool)
    >>> auc_columns(scores, labels)
    array([1., 1.])
    """
    ranks = rankdata(scores, axis=0)
    n_pos = is_current.sum(axis=0)
    n_neg = is_current.shape[0] - n_pos
    rank_sums = (ranks * is_current).sum(axis=0)
    aucs: Float64Array = (rank_sums - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return aucs


@dataclass(frozen=True)
class _Fold:
    """One cross-validation fold of a ridge regression, solved once for any labels."""

    test: IntpArray
    train: IntpArray
    weights: Float64Array
    """``x[test] (X'X + lam I)^-1`` (primal, ``n_test x d``) or
    ``x[test] X' (XX' + lam I)^-1`` (dual, ``n_test x n_train``), ``X = x[train]``."""
    primal: bool


def ridge_folds(x: Float64Array, fold_of: IntpArray, n_splits: int, C: float) -> list[_Fold]:  # noqa: N803
    """Solve a ridge regression per fold (penalty ``n_train / C``, no intercept).

    The primal ``d x d`` system is used when there are more training rows than
    features, the dual ``n_train x n_train`` one otherwise.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(8, 3))
    >>> [f.weights.shape for f in ridge_folds(x, np.arange(8) % 2, 2, 1.0)]
    [(4, 3), (4, 3)]
    """
    folds = []
    for k in range(n_splits):
        test, train = np.flatnonzero(fold_of == k), np.flatnonzero(fold_of != k)
        x_tr, x_te = x[train], x[test]
        primal = train.size > x.shape[1]
        system = x_tr.T @ x_tr if primal else x_tr @ x_tr.T
        system[np.diag_indices_from(system)] += train.size / C
        rhs = x_te.T if primal else x_tr @ x_te.T
        folds.append(_Fold(test, train, cho_solve(cho_factor(system), rhs).T, primal))
    return folds


def cross_validated_predictions(
    x: Float64Array, folds: list[_Fold], targets: Float64Array
) -> Float64Array:
    """Held-out ridge predictions for every column of ``targets`` (one label vector each).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(8, 3))
    >>> folds = ridge_folds(x, np.arange(8) % 2, 2, 1.0)
    >>> cross_validated_predictions(x, folds, np.ones((8, 2))).shape
    (8, 2)
    """
    out = np.empty_like(targets)
    xty = x.T @ targets if any(f.primal for f in folds) else None
    for fold in folds:
        if xty is not None and fold.primal:  # X_train'y = X'y - X_test'y_test
            out[fold.test] = fold.weights @ (xty - x[fold.test].T @ targets[fold.test])
        else:
            out[fold.test] = fold.weights @ targets[fold.train]
    return out


class DomainClassifierDetector(BaseDetector):
    """Cross-validated ROC AUC of a ridge classifier separating current from reference.

    The pooled sample is standardised (pooled mean and scale, which do not depend on
    the labels) and cut into ``n_splits`` random folds that ignore the labels. A ridge
    regression of the label (1 = current) on the features, penalty ``n_train / C``, is
    fitted on every fold's complement and predicts the fold. The statistic is the ROC
    AUC of all held-out predictions (0.5 = indistinguishable). The null refits all
    folds for each of ``n_permutations`` label permutations — cheap because the
    predictions are linear in the labels — so ``p_value = (k + 1) / (n_permutations + 1)``
    is exact for exchangeable data at any sample size. With groups, folds and
    permutations take whole groups. ``threshold`` is the null's ``1 - alpha`` quantile;
    ``details`` has ``null_mean_auc``.

    Parameters
    ----------
    n_splits : int
        Cross-validation folds (each side needs at least this many samples).
    C : float
        Inverse regularisation strength: the mean squared error plus ``|w|^2 / C``
        is minimised on standardised features.
    alpha : float
        False-alarm rate.
    n_permutations : int
        Label permutations (each a full cross-validated refit) used for calibration.
    random_state : int or None
        Seed for the folds and permutations.
    feature : str
        Feature name copied into results.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = DomainClassifierDetector().fit(rng.normal(size=(200, 5)))
    >>> same = det.score(rng.normal(size=(200, 5)))
    >>> shifted = det.score(rng.normal(size=(200, 5)) + np.r_[0.8, 0, 0, 0, 0])
    >>> same.drift_detected, shifted.drift_detected, round(shifted.statistic, 2)
    (False, True, 0.71)
    """

    name = "domain_classifier"
    input_shape: ClassVar[Shape] = "multivariate"

    def __init__(
        self,
        *,
        n_splits: int = 5,
        C: float = 1.0,  # noqa: N803 - scikit-learn's name for it
        alpha: float = 0.05,
        n_permutations: int = 1000,
        random_state: int | None = 0,
        feature: str = "embedding",
    ) -> None:
        super().__init__(
            alpha=alpha, n_permutations=n_permutations, random_state=random_state, feature=feature
        )
        self.n_splits = check_int(n_splits, "n_splits", 2)
        self.C = check_positive_float(C, "C")

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """Yield the contract suite's parameters: three folds keep its many refits quick.

        Yields
        ------
        dict of str to Any
            ``{"n_splits": 3}``.

        Examples
        --------
        >>> list(DomainClassifierDetector._unit_test_params())
        [{'n_splits': 3}]
        """
        yield {"n_splits": 3}

    def _score(self, current: Float64Array, rng: np.random.Generator) -> DriftResult:
        n, m = self.n_reference_, current.shape[0]
        if min(n, m) < self.n_splits:
            raise InvalidInputError(
                f"n_splits={self.n_splits} needs at least that many samples on each side, "
                f"got n_reference={n}, n_current={m}"
            )
        x = np.concatenate([self.reference_, current])
        scale = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
        fold_of = rng.permutation(np.arange(n + m) % self.n_splits)
        folds = ridge_folds(x, fold_of, self.n_splits, self.C)
        is_current = np.r_[np.zeros(n, dtype=bool), np.ones(m, dtype=bool)]
        centre = m / (n + m)
        aucs = []
        # Blocks of permutations, transposed so each column is one split's labels.
        blocks = permuted_labels(is_current, self.n_permutations, rng, MAX_CHUNK_ELEMENTS // 4)
        for labels in (np.ascontiguousarray(block.T) for block in blocks):
            held_out = cross_validated_predictions(x, folds, labels - centre)
            aucs.append(auc_columns(held_out, labels))
        values = np.concatenate(aucs)
        observed, null = float(values[0]), values[1:]
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=m,
            details={"n_splits": float(self.n_splits), "null_mean_auc": float(null.mean())},
        )

    def _score_grouped(
        self, current: Float64Array, groups: PooledGroups, rng: np.random.Generator
    ) -> DriftResult:
        g_ref, g_cur = groups.n_reference, groups.n_current
        if min(g_ref, g_cur) < self.n_splits:
            raise InvalidInputError(
                f"n_splits={self.n_splits} needs at least that many groups on each side, "
                f"got {g_ref} reference and {g_cur} current groups"
            )
        x = np.concatenate([self.reference_, current])
        scale = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
        group_of_row = groups.pooled()
        # Folds of whole groups: no image lends its look to the rows it is scored on.
        fold_of_group = rng.permutation(np.arange(g_ref + g_cur) % self.n_splits)
        folds = ridge_folds(x, fold_of_group[group_of_row], self.n_splits, self.C)
        splits = groups.permutations(self.n_permutations, rng)
        aucs = []
        for block in row_label_chunks(splits, group_of_row, MAX_CHUNK_ELEMENTS // 4):
            labels = np.ascontiguousarray(~block.T)  # one split per column, True = current
            centre = labels.mean(axis=0)
            held_out = cross_validated_predictions(x, folds, labels - centre)
            aucs.append(auc_columns(held_out, labels))
        values = np.concatenate(aucs)
        observed, null = float(values[0]), values[1:]
        return self._result(
            statistic=observed,
            threshold=null_threshold(null, self.alpha),
            p_value=permutation_p_value(observed, null),
            n_current=current.shape[0],
            details={"n_splits": float(self.n_splits), "null_mean_auc": float(null.mean())},
            groups=groups,
        )
