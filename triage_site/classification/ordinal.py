"""Urgency probabilities from two readings of one ordered scale, averaged, with a word-count reading beside them.

Why: the levels are ordered (0 is more urgent than 1, and so on), but a multinomial logistic regression treats
them as five unrelated labels. Frank and Hall's ordinal method (2001) fits one binary model per cut between
levels, P(level > k), which shares what separates "more urgent" from "less urgent" across every cut; the level
probabilities follow from the differences. Averaging both readings, out of fold on the training requests
(leave-scenario-out, same folds and the same costs and raise), gave 68.4% exact, 90.9% within one, 24.7%
over-triage and 4.1% level 0-1 under-triage, against 67.9%, 90.3%, 25.1% and 4.4% for the multinomial alone
(docs/classifier.md). The ordinal reading alone was between the two.

A third reading, multinomial naive Bayes on the same tf-idf n-grams, takes NAIVE_BAYES_WEIGHT of the mixture. It
is a weaker model alone (leave-scenario-out, its most likely level: 68.8% exact against 71.3%, with 8.0% level
0-1 under-triage) but errs elsewhere: it adds up the evidence of every word instead of fitting the phrasing of
the training scenarios. In the mixture it cut level 0-1 under-triage by about a point at equal exact accuracy,
which let the decision's costs come down (docs/classifier.md, 2026-12-06).
"""
import numpy as np

from scheduler.urgency import NUM_LEVELS

# Chosen leave-scenario-out on the training data only (docs/classifier.md): weight 0.15-0.25 and smoothing
# 0.03-0.1 gave the same frontier.
NAIVE_BAYES_WEIGHT = 0.2
NAIVE_BAYES_ALPHA = 0.1


class BlendedUrgencyModel:
    """A fitted multinomial and per-cut binary logistic regressions, and naive Bayes on the first `text_columns`
    columns (non-negative word counts or tf-idf; None: no naive Bayes); `predict_proba` and `classes_` as in
    scikit-learn, over every level."""

    def __init__(self, c, text_columns=None):
        self.c = c
        self.text_columns = text_columns
        self.naive_bayes = None

    def fit(self, x, labels):
        from sklearn.linear_model import LogisticRegression
        from sklearn.naive_bayes import MultinomialNB

        labels = np.asarray(labels)
        self.multinomial = LogisticRegression(C=self.c, max_iter=5000).fit(x, labels)
        self.cuts = [_cut(x, (labels > k).astype(int), self.c) for k in range(NUM_LEVELS - 1)]
        if self.text_columns:
            self.naive_bayes = MultinomialNB(alpha=NAIVE_BAYES_ALPHA).fit(x[:, :self.text_columns], labels)
        self.classes_ = np.arange(NUM_LEVELS)
        return self

    def predict_proba(self, x):
        blended = (every_level(self.multinomial, x) + self.ordinal_proba(x)) / 2
        if self.naive_bayes is None:
            return blended
        word_counts = every_level(self.naive_bayes, x[:, :self.text_columns])
        return (1 - NAIVE_BAYES_WEIGHT) * blended + NAIVE_BAYES_WEIGHT * word_counts

    def ordinal_proba(self, x):
        """P(level = k) from P(level > k), made non-increasing in k so that no probability is negative."""
        above = np.column_stack([np.full(x.shape[0], float(cut)) if isinstance(cut, (int, float))
                                 else cut.predict_proba(x)[:, list(cut.classes_).index(1)] for cut in self.cuts])
        above = np.minimum.accumulate(above, axis=1)
        below = np.column_stack([np.ones(x.shape[0]), above])
        return below - np.column_stack([above, np.zeros(x.shape[0])])


def every_level(model, x):
    """A fitted classifier's probabilities over every level, zero for a level it never saw."""
    proba = np.zeros((x.shape[0], NUM_LEVELS))
    proba[:, [int(c) for c in model.classes_]] = model.predict_proba(x)
    return proba


def _cut(x, above, c):
    """The binary model of one cut, or its constant probability when the rows all fall on one side of it (a
    cross-validation fold without any row of the least urgent level, say)."""
    from sklearn.linear_model import LogisticRegression

    if above.min() == above.max():
        return float(above[0])
    return LogisticRegression(C=c, max_iter=5000).fit(x, above)
