"""The category classifier both CoE trainings share: multinomial logistic regression on frozen prompt embeddings."""

from __future__ import annotations

import warnings

import numpy as np

from routers.train.config import ClassifierConfig


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int,
                 cfg: ClassifierConfig) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """Logistic regression with C chosen by stratified k-fold CV (log loss); returns (W [d, K], b [K]), C."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"every category needs training examples; missing: {np.flatnonzero(counts == 0).tolist()}")
    if n_classes < 2:
        raise ValueError("a category classifier needs at least two categories")
    folds = StratifiedKFold(n_splits=max(2, min(cfg.cv_folds, int(counts.min()))), shuffle=True, random_state=0)
    clf = LogisticRegressionCV(Cs=cfg.Cs, cv=folds, max_iter=cfg.max_iter, class_weight=cfg.class_weight,
                               scoring="neg_log_loss")
    with warnings.catch_warnings():
        # sklearn >= 1.8 announces attribute/argument changes of LogisticRegressionCV we do not depend on.
        warnings.simplefilter("ignore", FutureWarning)
        clf.fit(x, y)
    return _as_multiclass(clf.coef_, clf.intercept_), float(np.ravel(clf.C_)[0])


def fit_logistic_fixed_c(x: np.ndarray, y: np.ndarray, n_classes: int, c: float,
                         cfg: ClassifierConfig) -> tuple[np.ndarray, np.ndarray]:
    """The same model at a given C (out-of-fold fits reuse the C chosen on all the data)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=cfg.max_iter, class_weight=cfg.class_weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        clf.fit(x, y)
    w, b = _as_multiclass(clf.coef_, clf.intercept_)
    full_w = np.zeros((x.shape[1], n_classes), dtype=np.float32)
    full_b = np.full(n_classes, -1e4, dtype=np.float32)  # a class absent from this fold is never predicted
    full_w[:, clf.classes_] = w
    full_b[clf.classes_] = b
    return full_w, full_b


def _as_multiclass(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # sklearn stores a two-class model as one row (logit of class 1); softmax over [0, z] gives the same p.
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef.T.astype(np.float32), intercept.astype(np.float32)
