"""Urgency probabilities from two readings of one ordered scale, averaged.

Why: the levels are ordered (0 is more urgent than 1, and so on), but a multinomial logistic regression treats
them as five unrelated labels. Frank and Hall's ordinal method (2001) fits one binary model per cut between
levels, P(level > k), which shares what separates "more urgent" from "less urgent" across every cut; the level
probabilities follow from the differences. Averaging both readings, out of fold on the training requests
(leave-scenario-out, same folds and the same costs and raise), gave 68.4% exact, 90.9% within one, 24.7%
over-triage and 4.1% level 0-1 under-triage, against 67.9%, 90.3%, 25.1% and 4.4% for the multinomial alone
(docs/classifier.md). The ordinal reading alone was between the two.
"""
import numpy as np

from scheduler.urgency import NUM_LEVELS


class BlendedUrgencyModel:
    """A fitted multinomial and per-cut binary logistic regressions; `predict_proba` and `classes_` as in
    scikit-learn, over every level."""

    def __init__(self, c):
        self.c = c

    def fit(self, x, labels):
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels)
        self.multinomial = LogisticRegression(C=self.c, max_iter=5000).fit(x, labels)
        self.cuts = [_cut(x, (labels > k).astype(int), self.c) for k in range(NUM_LEVELS - 1)]
        self.classes_ = np.arange(NUM_LEVELS)
        return self

    def predict_proba(self, x):
        multinomial = np.zeros((x.shape[0], NUM_LEVELS))
        multinomial[:, [int(c) for c in self.multinomial.classes_]] = self.multinomial.predict_proba(x)
        return (multinomial + self.ordinal_proba(x)) / 2

    def ordinal_proba(self, x):
        """P(level = k) from P(level > k), made non-increasing in k so that no probability is negative."""
        above = np.column_stack([np.full(x.shape[0], float(cut)) if isinstance(cut, (int, float))
                                 else cut.predict_proba(x)[:, list(cut.classes_).index(1)] for cut in self.cuts])
        above = np.minimum.accumulate(above, axis=1)
        below = np.column_stack([np.ones(x.shape[0]), above])
        return below - np.column_stack([above, np.zeros(x.shape[0])])


def _cut(x, above, c):
    """The binary model of one cut, or its constant probability when the rows all fall on one side of it (a
    cross-validation fold without any row of the least urgent level, say)."""
    from sklearn.linear_model import LogisticRegression

    if above.min() == above.max():
        return float(above[0])
    return LogisticRegression(C=c, max_iter=5000).fit(x, above)
