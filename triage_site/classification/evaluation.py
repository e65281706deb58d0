"""Evaluation figures for the urgency classifier (used by the evaluate_classifier command)."""
import statistics
import time

import numpy as np

from scheduler.metrics import percentile
from scheduler.urgency import LEVELS, NUM_LEVELS

from . import classifier, length


def evaluate(rows, classify_one=None):
    """Classify each row alone (as requests arrive) and compute the triage figures.

    rows: dicts with `text`, `label` 0..4 and optionally `answer_tokens`/`length_bucket`.
    """
    classify_one = classify_one or classifier.classify
    if rows:
        classify_one(rows[0]["text"])  # warm-up: model load is not request latency
    results, model_only, latencies, tokens, names = [], [], [], [], set()
    for row in rows:
        started = time.perf_counter()
        result = classify_one(row["text"])
        latencies.append((time.perf_counter() - started) * 1000)
        results.append(result)
        model_only.append(result.model_urgency)
        tokens.append(result.predicted_output_tokens)
        names.add(result.classifier_name)
    report = report_for(rows, results)
    report["classifier"] = ", ".join(sorted(names))
    latencies.sort()
    report["latency_ms"] = {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                            "mean": _mean(latencies)}
    if all(level is not None for level in model_only):
        report["model_only"] = triage_figures([int(row["label"]) for row in rows], model_only)
    actual = [row.get("answer_tokens", length.BUCKET_TOKENS[row["length_bucket"]]) if
              ("answer_tokens" in row or "length_bucket" in row) else None for row in rows]
    if rows and all(value is not None for value in actual):
        report["length"] = {
            "kendall_tau": length.kendall_tau(tokens, actual),
            "mae_tokens": float(np.mean(np.abs(np.array(tokens) - np.array(actual)))),
            "bucket_accuracy": float(np.mean([length.bucket_of(p) == length.bucket_of(a)
                                              for p, a in zip(tokens, actual)])),
        }
    return report


def cross_validate(rows, encoder_name=None, folds=10, under_cost=None, c=None, minor_under_cost=None):
    """Leave-scenario-out cross-validation: the rows are split by `scenario` into `folds` groups, and every
    row is classified by a head that never saw any phrasing of its scenario. Returns the same report as
    `evaluate` (without latency)."""
    from sklearn.model_selection import GroupKFold

    from . import encoder, head as head_module

    encoder_name = encoder_name or encoder.configured_name()
    under_cost = head_module.DEFAULT_UNDER_COST if under_cost is None else under_cost
    minor_under_cost = head_module.DEFAULT_MINOR_UNDER_COST if minor_under_cost is None else minor_under_cost
    c = head_module.DEFAULT_C if c is None else c
    embeddings, supports, clause_features = head_module.prepared(rows, encoder_name)
    scenarios = [row.get("scenario") or f"row-{i}" for i, row in enumerate(rows)]
    predicted = [None] * len(rows)
    texts = [row["text"] for row in rows]
    for train_index, test_index in GroupKFold(n_splits=folds).split(texts, groups=scenarios):
        fold = fold_predictions(rows, embeddings, supports, clause_features, train_index, test_index, encoder_name,
                                under_cost=under_cost, minor_under_cost=minor_under_cost, c=c)
        for i, result in zip(test_index, fold):
            predicted[i] = result
    return report_for(rows, predicted)


def fold_predictions(rows, embeddings, supports, clause_features, train_index, test_index, encoder_name, *,
                     under_cost, minor_under_cost, c):
    """One cross-validation fold: the classifications of rows[test_index] (in that order) by a head fitted on
    rows[train_index] alone, through the shipped decision (costs, raise, rules). `embeddings`, `supports` and
    `clause_features` are head.prepared(rows, ...) for every row."""
    from . import head as head_module, rules

    texts = head_module.readable_texts(rows)
    forced = head_module.forced_levels(supports)
    vectorizer, urgency_model, length_model = head_module.fit(
        [rows[i] for i in train_index], embeddings[train_index], [forced[i] for i in train_index],
        clause_features[train_index], c)
    fold_head = head_module.UrgencyHead(vectorizer, urgency_model, length_model, dict(length.BUCKET_TOKENS),
                                        encoder_name, "cv", "", under_cost, minor_under_cost=minor_under_cost)
    probabilities, length_probabilities = fold_head.predict([texts[i] for i in test_index], embeddings[test_index],
                                                            [forced[i] for i in test_index],
                                                            clause_features[test_index])
    tokens = fold_head.expected_tokens(length_probabilities)
    thresholds = classifier.review_thresholds()
    return [classifier._combine(rules.red_flags(texts[i]), supports[i], probabilities[k], int(level),
                                float(tokens[k]), fold_head, 0.0, thresholds)
            for k, (i, level) in enumerate(zip(test_index, fold_head.decide(probabilities)))]


def report_for(rows, results):
    labels = [int(row["label"]) for row in rows]
    predicted = [result.urgency for result in results]
    report = triage_figures(labels, predicted)
    report["by_level"] = _grouped(labels, predicted, labels)
    styles = [row.get("style") for row in rows]
    if any(styles):
        report["by_style"] = _grouped(labels, predicted, [style or "(none)" for style in styles])
    report["missed_0_1"] = [{"text": row["text"], "label": label, "predicted": level, "style": row.get("style")}
                            for row, label, level in zip(rows, labels, predicted) if label <= 1 and level > label]
    report["needs_review"] = _ratio(sum(bool(result.needs_review) for result in results), len(results))
    return report


def triage_figures(labels, predicted):
    labels, predicted = np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int)
    n = len(labels)
    matrix = np.zeros((NUM_LEVELS, NUM_LEVELS), dtype=int)
    for true, pred in zip(labels, predicted):
        matrix[true, pred] += 1
    high = labels <= 1
    return {
        "n": int(n),
        "accuracy": _ratio(np.sum(labels == predicted), n),
        "within_one": _ratio(np.sum(np.abs(labels - predicted) <= 1), n),
        "under_triage": _ratio(np.sum(predicted > labels), n),
        "over_triage": _ratio(np.sum(predicted < labels), n),
        "under_triage_0_1": _ratio(np.sum(predicted[high] > labels[high]), int(np.sum(high))),
        "share_level_0": _ratio(np.sum(predicted == 0), n),
        "under_triage_by_level": {level: _ratio(np.sum(predicted[labels == level] > level),
                                                int(np.sum(labels == level))) for level in LEVELS},
        "confusion": matrix.tolist(),
    }


def _grouped(labels, predicted, groups):
    """Exact, within-one, under- and over-triage per group (a level, a style), in sorted group order."""
    members = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    out = {}
    for group in sorted(members, key=str):
        true = np.asarray([labels[i] for i in members[group]])
        pred = np.asarray([predicted[i] for i in members[group]])
        n = len(true)
        out[str(group)] = {"n": n, "accuracy": _ratio(np.sum(true == pred), n),
                           "within_one": _ratio(np.sum(np.abs(true - pred) <= 1), n),
                           "under_triage": _ratio(np.sum(pred > true), n),
                           "over_triage": _ratio(np.sum(pred < true), n)}
    return out


def _group_table(title, groups):
    lines = [f"{title:<16} {'n':>4} {'exact':>7} {'within1':>8} {'under':>7} {'over':>7}"]
    for name, figures in groups.items():
        lines.append(f"{name:<16} {figures['n']:>4} {_fmt(figures['accuracy']):>7} {_fmt(figures['within_one']):>8} "
                     f"{_fmt(figures['under_triage']):>7} {_fmt(figures['over_triage']):>7}")
    return lines


def format_report(report):
    lines = [f"requests: {report['n']}   classifier: {report.get('classifier', '')}",
             f"accuracy:             {_fmt(report['accuracy'])}",
             f"within-one accuracy:  {_fmt(report['within_one'])}",
             f"under-triage rate:    {_fmt(report['under_triage'])}   (predicted less urgent than true)",
             f"  of levels 0 and 1:  {_fmt(report['under_triage_0_1'])}",
             f"over-triage rate:     {_fmt(report['over_triage'])}",
             f"share put at level 0: {_fmt(report['share_level_0'])}",
             f"flagged for review:   {_fmt(report.get('needs_review', 0.0))}",
             "under-triage by level: " + "  ".join(f"{k}: {_fmt(v)}" for k, v in report["under_triage_by_level"].items()),
             "confusion matrix (rows = true level, columns = predicted):",
             "        " + " ".join(f"{p:>5}" for p in LEVELS)]
    for true, row in enumerate(report["confusion"]):
        lines.append(f"true {true}: " + " ".join(f"{count:>5}" for count in row))
    latency = report.get("latency_ms")
    if latency:
        lines.append(f"latency per request: p50 {latency['p50']:.1f} ms   p95 {latency['p95']:.1f} ms   "
                     f"mean {latency['mean']:.1f} ms")
    model = report.get("model_only")
    if model:
        lines.append(f"model alone (before rules): accuracy {_fmt(model['accuracy'])}, within-one "
                     f"{_fmt(model['within_one'])}, under-triage {_fmt(model['under_triage'])}, "
                     f"under-triage 0/1 {_fmt(model['under_triage_0_1'])}")
    if report.get("length"):
        figures = report["length"]
        lines.append(f"answer length: Kendall tau {figures['kendall_tau']:.3f}   MAE {figures['mae_tokens']:.0f} tokens"
                     f"   bucket accuracy {_fmt(figures['bucket_accuracy'])}")
    if report.get("by_level"):
        lines += _group_table("by true level", report["by_level"])
    if report.get("by_style"):
        lines += _group_table("by style", report["by_style"])
    missed = report.get("missed_0_1", [])
    lines.append(f"level 0-1 requests triaged less urgent: {len(missed)}")
    for miss in missed:
        style = f" [{miss['style']}]" if miss.get("style") else ""
        lines.append(f"  true {miss['label']} -> {miss['predicted']}{style}: {miss['text']}")
    return "\n".join(lines)


def _ratio(count, total):
    return float(count) / total if total else 0.0


def _fmt(value):
    return f"{100 * value:.1f}%"


def _mean(values):
    return float(statistics.fmean(values)) if values else 0.0
