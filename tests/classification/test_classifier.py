"""The combined classifier on the real model, and its fallback when the model cannot load."""
import pytest

from triage_site.classification import classifier


def test_red_flag_text_is_level_0_with_reason(loaded_model):
    result = classifier.classify("my dad colapsed, not breathing, lips going blue")
    assert result.urgency == 0
    assert result.rule_urgency == 0 and "not breathing" in result.rule_reason
    assert result.classifier_name.startswith("minilm+head-")
    assert len(result.detail["probabilities"]) == 5
    assert "Final level 0" in result.detail["reasoning"]
    assert not result.needs_review


def test_non_urgent_text_stays_non_urgent(loaded_model):
    result = classifier.classify("can I get a repeat prescription for my blood pressure tablets")
    assert result.urgency >= 3
    assert result.rule_urgency is None
    assert result.predicted_output_tokens < 200


def test_rules_never_lower_the_model(loaded_model):
    texts = ["not unresponsive, talking now, small cut on the finger",
             "he is 70, sudden tearing pain in his back", "sore throat for two days"]
    for result in classifier.classify_batch(texts):
        assert result.urgency <= result.model_urgency
        if result.rule_urgency is not None:
            assert result.urgency <= result.rule_urgency


def test_cost_sensitive_decision_prefers_the_more_urgent_when_a_life_threat_is_possible(loaded_model):
    head, _ = loaded_model
    assert list(head.decide([[0, 0.3, 0.7, 0, 0]])) == [1]  # 30% of high risk: the more urgent level
    assert list(head.decide([[0.25, 0, 0, 0.75, 0]])) == [0]
    assert list(head.decide([[0, 0, 0.45, 0.55, 0]])) == [3]  # between two non-urgent levels: the likelier
    assert list(head.decide([[0, 0, 0.05, 0.95, 0]])) == [3]  # clear: the likely level


def test_missing_a_life_threat_costs_more_than_missing_a_minor_level():
    from triage_site.classification import head

    cost = head.cost_matrix(6.0, 0.75)
    assert cost[0, 0] == 0 and cost[1, 2] == 6.0 and cost[0, 2] == 12.0  # true 0-1 sent less urgent
    assert cost[2, 3] == 0.75 and cost[2, 4] == 1.5                      # true 2-4 sent less urgent
    assert cost[3, 1] == 2.0                                             # over-triage: 1 a level
    assert (head.cost_matrix(2.0) == head.cost_matrix(2.0, 2.0)).all()   # one cost: the same for all levels


def test_fallback_when_model_cannot_load(model_unavailable):
    urgent, plain = classifier.classify_batch(["he is unresponsive", "my knee hurts a bit"])
    assert urgent.urgency == 0 and urgent.rule_urgency == 0 and urgent.needs_review
    assert plain.urgency == 2 and plain.rule_urgency is None and plain.needs_review
    assert plain.classifier_name == "rules-fallback"
    assert "missing.joblib" in plain.detail["fallback_reason"]
    assert plain.predicted_output_tokens > 0


def test_head_for_another_encoder_is_refused(settings, model_unavailable):
    settings.TRIAGE_CLASSIFIER_HEAD = str(classifier_head_path())
    settings.TRIAGE_CLASSIFIER_ENCODER = "some-org/bigger-model"
    result = classifier.classify("sore throat")
    assert result.needs_review and "trained on encoder" in result.detail["fallback_reason"]


def classifier_head_path():
    from triage_site.classification import head
    return head.ARTIFACT_PATH


def test_reasoning_names_the_decision_point_and_quotes_the_evidence(loaded_model):
    result = classifier.classify("my mum is 81, her oximeter says 76 and she cannot get a word out")
    assert result.urgency == 0
    points = {support["point"] for support in result.detail["decision_points"]}
    assert "D" in points
    assert "Decision point D (danger-zone vital sign)" in result.detail["reasoning"]
    assert "\u201c" in result.detail["reasoning"] and "Decision point C" in result.detail["reasoning"]


def test_fallback_still_reads_numbers_and_rules(model_unavailable):
    result = classifier.classify("sats 79% on air, RR 38")
    assert result.urgency == 0 and result.needs_review
    assert any(support["point"] == "D" for support in result.detail["decision_points"])


class _Head:
    under_cost, encoder_name, version = 2.0, "test", "t"


@pytest.mark.parametrize("probs, model_level, expected, review", [
    ([0.05, 0.3, 0.5, 0.15, 0.0], 2, 1, True),    # 35% on levels 0-1: take the likelier, ask a person
    ([0.25, 0.1, 0.2, 0.45, 0.0], 3, 0, True),
    ([0.0, 0.05, 0.9, 0.05, 0.0], 2, 2, False),   # clear: keep
])
def test_a_material_chance_of_a_life_threat_is_taken_and_flagged(probs, model_level, expected, review):
    from triage_site.classification import rules

    result = classifier._combine(rules.RuleResult(), [], probs, model_level, 100.0, _Head(), 1.0, (0.45, 0.3))
    assert result.urgency == expected and result.needs_review is review
    if review:
        assert "a dispatcher should confirm" in result.detail["reasoning"]


@pytest.mark.parametrize("probs, model_level, says", [
    ([0.0, 0.3, 0.7, 0.0, 0.0], 1, "chose the more urgent level 1"),
    ([0.0, 0.0, 0.5, 0.45, 0.05], 3, "Unsure between levels 2 and 3: chose the less urgent"),
])
def test_the_reasoning_says_which_way_an_unsure_choice_went(probs, model_level, says):
    from triage_site.classification import rules

    result = classifier._combine(rules.RuleResult(), [], probs, model_level, 100.0, _Head(), 1.0, (0.45, 0.9))
    assert result.urgency == model_level and says in result.detail["reasoning"]
