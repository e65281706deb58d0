"""The out-of-fold card benchmark: folds by scenario, and the veto scored as selection applies it."""
import pytest

from benchmarks import card_veto


def test_a_scenario_always_falls_in_one_fold_and_folds_are_used():
    scenarios = [f"g5-situation-{n}" for n in range(200)]
    assert [card_veto.fold_of(s, 5) for s in scenarios] == [card_veto.fold_of(s, 5) for s in scenarios]
    assert {card_veto.fold_of(s, 5) for s in scenarios} == set(range(5))


@pytest.mark.django_db
def test_the_veto_drops_a_one_clause_card_the_head_rules_out_but_keeps_a_rule_card():
    # (not "breathing normally": a call that says so loses its CPR card whatever the head says, selection.said_otherwise)
    rows = [{"text": "she won't wake up but her chest is going up and down", "label": 1,
             "cards": ["unconscious_breathing"], "scenario": "a"},
            {"text": "he collapsed and is not breathing", "label": 0, "cards": ["cpr_adult"], "scenario": "b"}]
    found = [(None, {"cpr_adult": 0.6}, {"unconscious_breathing": 1.0}, set()),
             (None, {}, {"cpr_adult": 1.0}, {"cpr_adult"})]
    probabilities = [{"cpr_adult": 0.02, "unconscious_breathing": 0.9}, {"cpr_adult": 0.01}]
    without = card_veto.score(rows, found, probabilities, 0.5, 0.0)
    vetoed = card_veto.score(rows, found, probabilities, 0.5, 0.1)
    # Without the veto a phrase's CPR card supersedes the recovery position; the rule's CPR card stays either way.
    assert without["levels_0_1"]["recall"] == 0.5 and vetoed["levels_0_1"]["recall"] == 1.0
    assert without["levels_0_1"]["precision"] < vetoed["levels_0_1"]["precision"] == 1.0
