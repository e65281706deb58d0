"""Answer-length prediction for the scheduler, in buckets.

The label is a PROXY written with the data set, not a measured LLM output: each scenario has an
expected length of the dispatcher guidance the LLM should give (0 short: reassurance or a
referral; 1 medium: self-care steps; 2 long: first aid with checks; 3 very long: step-by-step
CPR / choking / bleeding-control coaching), one bucket longer when the request itself is long
and multi-part. The head predicts bucket probabilities; the predicted token count is their
expectation over bucket sizes, which gives the scheduler a continuous ranking.
"""
import numpy as np

BUCKET_TOKENS = {0: 60, 1: 140, 2: 260, 3: 380}
_DEFAULT_BY_LEVEL = {0: 3, 1: 2, 2: 1, 3: 1, 4: 0}


def default_bucket(level):
    return _DEFAULT_BY_LEVEL.get(level, 1)


def default_tokens(level):
    """Fallback when no model is available: a length by urgency level."""
    return BUCKET_TOKENS[default_bucket(level if level is not None else 2)]


def bucket_of(tokens):
    """The bucket whose size is nearest to `tokens`."""
    return min(BUCKET_TOKENS, key=lambda b: abs(BUCKET_TOKENS[b] - tokens))


def kendall_tau(predicted, actual):
    """Kendall's tau-b between predicted and true lengths (ties handled), nan when undefined."""
    from scipy.stats import kendalltau

    if len(predicted) < 2:
        return float("nan")
    tau = kendalltau(np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)).statistic
    return float(tau)


# Kendall's tau that learning-to-rank output lengths reached on LMSYS conversations (the bar of issue 17).
PUBLISHED_TAU = 0.62


def recorded_report(recorded):
    """How well predicted lengths rank the answers actually written: `recorded` holds (text, predicted, generated)."""
    predicted = [row[1] for row in recorded]
    generated = [row[2] for row in recorded]
    longest = max(generated, default=0)
    return {"n": len(recorded), "kendall_tau": kendall_tau(predicted, generated), "bar": PUBLISHED_TAU,
            "longest_answer": longest, "at_longest": sum(1 for tokens in generated if tokens == longest)}


def format_recorded(report):
    tau = report["kendall_tau"]
    verdict = "n/a" if tau != tau else ("meets" if tau >= report["bar"] else "below")
    return (f"answer length, recorded answers: Kendall's tau {tau:.3f} over {report['n']} finished requests "
            f"({verdict} the published bar of {report['bar']}); {report['at_longest']} answers reached the "
            f"longest length seen ({report['longest_answer']} tokens), probably cut at the answer limit")
