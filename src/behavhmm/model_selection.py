"""Cross-validation with whole sessions.

Splitting a recording frame by frame would leak information between train
and test frames and would cut chains mid-session.
[`SessionKFold`][behavhmm.model_selection.SessionKFold] keeps every session whole. With
scikit-learn's metadata routing switched on, ``session_starts`` reaches the splitter, ``fit`` and
``score`` automatically:

>>> import sklearn
>>> from sklearn.model_selection import GridSearchCV
>>> from behavhmm import ARHMM
>>> from behavhmm.model_selection import SessionKFold
>>> sklearn.set_config(enable_metadata_routing=True)  # doctest: +SKIP
>>> grid = {"n_states": [2, 4, 8]}
>>> search = GridSearchCV(ARHMM(nlags=1), grid, cv=SessionKFold(3))  # doctest: +SKIP
>>> search.fit(X, session_starts=mask)  # mask: bool array of shape (n_time_bins,)  # doctest: +SKIP

Use the boolean-mask form of ``session_starts``: scikit-learn indexes it with
each fold's rows, so every fold sees its own session boundaries.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator, GroupKFold
from sklearn.utils import check_scalar

from .sessions import session_ids, session_mask

__all__ = [
    "NStatesScan",
    "Prototypes",
    "SessionKFold",
    "scan_n_states",
    "select_prototypes",
    "session_labels",
]


def session_labels(session_starts, n_time_bins: int | None = None) -> np.ndarray:
    """Session number (0, 1, ...) of every time bin, e.g. as ``groups`` for ``GroupKFold``.

    Parameters
    ----------
    session_starts : bool array-like of shape (n_time_bins,) or int array-like
        A session-start mask, or start indices (then ``n_time_bins`` is required).
    n_time_bins : int, optional
        Length of the time axis; defaults to the mask's length.

    Returns
    -------
    ndarray of int, shape (n_time_bins,)

    Raises
    ------
    ValueError
        If start indices are given without ``n_time_bins``, or are out of range.
    """
    arr = np.asarray(session_starts)
    if n_time_bins is None:
        if arr.dtype != bool:
            raise ValueError("n_time_bins is required when session_starts holds start indices.")
        n_time_bins = arr.shape[0]
    return session_ids(session_mask(session_starts, int(n_time_bins)))


class SessionKFold(BaseCrossValidator):
    """K-fold cross-validation that keeps sessions whole.

    Sessions are assigned to folds with scikit-learn's ``GroupKFold`` (which
    balances the number of frames per fold); each test fold holds whole
    sessions, never a piece of one.

    Parameters
    ----------
    n_splits : int, default 5
        Number of folds (at most the number of sessions).
    shuffle : bool, default False
        Shuffle sessions before assigning them to folds.
    random_state : int or None, default None
        Seed of the shuffle.

    Notes
    -----
    ``split`` reads the sessions from ``session_starts`` (requested through
    scikit-learn's metadata routing) or, without routing, from ``groups``
    holding one label per time bin.
    """

    __metadata_request__split = {"session_starts": True}

    def __init__(self, n_splits: int = 5, *, shuffle: bool = False, random_state=None):
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None, session_starts=None):
        """Number of folds."""
        return self.n_splits

    def split(self, X, y=None, groups=None, session_starts=None):
        """Yield ``(train_index, test_index)`` with whole sessions in each test fold.

        Parameters
        ----------
        X : array-like of shape (n_time_bins, ...)
            Data (only its length is used).
        y : Ignored
        groups : array-like of shape (n_time_bins,), optional
            Session label of every time bin, used when ``session_starts`` is None.
        session_starts : bool array-like of shape (n_time_bins,) or int array-like, optional
            Session starts of ``X``.

        Yields
        ------
        train_index, test_index : ndarray of int

        Raises
        ------
        ValueError
            If neither ``session_starts`` nor ``groups`` is given, or there are
            fewer sessions than folds.
        """
        check_scalar(self.n_splits, "n_splits", numbers.Integral, min_val=2)
        n_time_bins = len(X)
        if session_starts is not None:
            labels = session_ids(session_mask(session_starts, n_time_bins))
        elif groups is not None:
            labels = np.asarray(groups)
        else:
            raise ValueError(
                "SessionKFold needs the sessions: enable metadata routing "
                "(sklearn.set_config(enable_metadata_routing=True)) and pass session_starts to "
                "fit, or pass groups=behavhmm.model_selection.session_labels(session_starts)."
            )
        n_sessions = len(np.unique(labels))
        if n_sessions < self.n_splits:
            raise ValueError(
                f"SessionKFold(n_splits={self.n_splits}) needs at least {self.n_splits} sessions, "
                f"got {n_sessions}."
            )
        folds = GroupKFold(
            self.n_splits,
            shuffle=self.shuffle,
            random_state=self.random_state if self.shuffle else None,
        )
        yield from folds.split(np.zeros((n_time_bins, 1)), groups=labels)


from ._motifs import NStatesScan, Prototypes, scan_n_states, select_prototypes  # noqa: E402
