"""The urgency model reads the levels as ordered: its probabilities are a proper distribution over every level,
and the ordinal half turns P(level > k) into level probabilities without a negative one."""
import numpy as np

from triage_site.classification.ordinal import BlendedUrgencyModel


def ordered_data(seed=0, n=500):
    rng = np.random.default_rng(seed)
    severity = rng.uniform(0, 5, n)
    x = np.column_stack([severity + rng.normal(0, 0.3, n), rng.normal(0, 1, n)])
    return x, np.clip(severity.astype(int), 0, 4)


def test_probabilities_cover_every_level_and_follow_the_scale():
    x, labels = ordered_data()
    model = BlendedUrgencyModel(c=10.0).fit(x, labels)
    probs = model.predict_proba(x)
    assert list(model.classes_) == [0, 1, 2, 3, 4]
    assert probs.shape == (len(x), 5) and (probs >= 0).all() and np.allclose(probs.sum(axis=1), 1)
    assert (probs.argmax(axis=1) == labels).mean() > 0.8
    mild, severe = model.predict_proba(np.array([[0.2, 0.0], [4.8, 0.0]]))
    assert mild.argmax() == 0 and severe.argmax() == 4


class _Cut:
    classes_ = np.array([0, 1])

    def __init__(self, above):
        self.above = above

    def predict_proba(self, x):
        return np.column_stack([1 - np.full(len(x), self.above), np.full(len(x), self.above)])


def test_cuts_that_disagree_give_no_negative_probability():
    model = BlendedUrgencyModel(c=1.0)
    model.cuts = [_Cut(0.6), _Cut(0.7), _Cut(0.2), _Cut(0.3)]  # P(>1) above P(>0): fitted separately, they can
    probs = model.ordinal_proba(np.zeros((1, 2)))[0]
    assert (probs >= 0).all() and np.isclose(probs.sum(), 1)
    assert np.allclose(probs, [0.4, 0.0, 0.4, 0.0, 0.2])


def test_a_fold_without_the_least_urgent_levels_still_fits():
    x, labels = ordered_data()
    keep = labels <= 2
    model = BlendedUrgencyModel(c=10.0).fit(x[keep], labels[keep])
    probs = model.predict_proba(x)
    assert np.allclose(probs.sum(axis=1), 1) and (probs >= 0).all()
    assert probs[:, 3:].max() == 0.0  # nothing learned above level 2 puts any weight there


def test_naive_bayes_reads_only_the_word_columns_and_keeps_a_distribution():
    x, labels = ordered_data()
    rng = np.random.default_rng(1)
    # Two non-negative "word" columns that carry the level, then the signed columns naive Bayes must not see.
    words = np.column_stack([labels == 0, labels == 4]).astype(float) + rng.uniform(0, 0.2, (len(x), 2))
    model = BlendedUrgencyModel(c=10.0, text_columns=2).fit(np.column_stack([words, x]), labels)
    assert model.naive_bayes is not None and model.naive_bayes.n_features_in_ == 2
    probs = model.predict_proba(np.column_stack([words, x]))
    assert (probs >= 0).all() and np.allclose(probs.sum(axis=1), 1)
    without = BlendedUrgencyModel(c=10.0).fit(np.column_stack([words, x]), labels)
    assert without.naive_bayes is None
    assert not np.allclose(probs, without.predict_proba(np.column_stack([words, x])))
