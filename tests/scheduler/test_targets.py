import pytest

from scheduler import targets


def test_parse_reads_one_target_per_level_and_dashes_where_allowed():
    assert targets.parse("2, 10,60,300,900", name="X") == (2.0, 10.0, 60.0, 300.0, 900.0)
    assert targets.parse("30,60,-,-,-", name="X", allow_none=True) == (30.0, 60.0, None, None, None)


@pytest.mark.parametrize("text, message", [
    ("2,10,60", "needs 5 comma-separated values"),
    ("2,10,sixty,300,900", "level 2's target must be a number of seconds, got 'sixty'"),
    ("2,0,60,300,900", "level 1's target must be above 0"),
    ("30,60,-,-,-", "level 2's target must be a number"),  # dashes only where a level may have no target
])
def test_parse_refuses_bad_targets_naming_the_setting_and_level(text, message):
    with pytest.raises(ValueError, match="TRIAGE_X") as raised:
        targets.parse(text, name="TRIAGE_X")
    assert message in str(raised.value)


def test_state_is_within_until_three_quarters_then_near_then_over():
    assert targets.state(7.5, 10) == targets.WITHIN
    assert targets.state(7.6, 10) == targets.NEAR
    assert targets.state(10, 10) == targets.NEAR  # the target itself is still met
    assert targets.state(10.1, 10) == targets.OVER
    assert targets.state(5, None) is None


def test_attainment_counts_each_level_and_leaves_empty_levels_unknown():
    result = targets.attainment([(0, 1.0), (0, 3.0), (0, 2.0), (2, 61.0)], targets.FIRST_TOKEN_TARGET_SECONDS)
    assert result[0] == {"within": 2, "total": 3, "share": 2 / 3}
    assert result[2] == {"within": 0, "total": 1, "share": 0.0}
    assert result[1] == {"within": 0, "total": 0, "share": None}


def test_defaults_alert_only_the_two_most_urgent_levels():
    assert [t is not None for t in targets.ACKNOWLEDGE_TARGET_SECONDS] == [True, True, False, False, False]
    assert targets.ACKNOWLEDGE_TARGET_SECONDS[0] == 30.0


def test_targets_come_from_the_environment_like_djangos_settings(monkeypatch):
    monkeypatch.setenv("TRIAGE_FIRST_TOKEN_TARGETS_S", "1,2,3,4,5")
    assert targets.first_token_targets() == (1.0, 2.0, 3.0, 4.0, 5.0)
    monkeypatch.setenv("TRIAGE_FIRST_TOKEN_TARGETS_S", "1,2")
    with pytest.raises(ValueError, match="TRIAGE_FIRST_TOKEN_TARGETS_S"):
        targets.first_token_targets()


def test_per_class_summaries_carry_target_attainment():
    from scheduler.metrics import per_class_summary

    records = [{"urgency": 0, "waiting": 1.0, "ttft": 1.0, "e2e": 3.0},
               {"urgency": 0, "waiting": 2.5, "ttft": 2.5, "e2e": 4.0},
               {"urgency": 4, "waiting": 100.0, "ttft": 100.0, "e2e": 200.0}]
    summary = per_class_summary(records, (2.0, 10.0, 60.0, 300.0, 900.0))
    assert summary["0"]["attainment"] == {"within": 1, "total": 2, "share": 0.5}
    assert summary["4"]["attainment"]["share"] == 1.0
    assert summary["2"]["attainment"]["share"] is None
    assert summary["overall"]["attainment"] == {"within": 2, "total": 3, "share": 2 / 3}


def test_simulate_and_compare_print_attainment(capsys):
    from scheduler import compare, simulate

    simulate.main(["--policy", "semantic", "--user-request-gap", "0.5", "--max-concurrent-user-requests", "3",
                   "--gap-num", "4"])
    out = capsys.readouterr().out
    assert "in target" in out and "0: 2 s, 1: 10 s" in out
    compare.main(["--user-request-gap", "0.5", "--max-concurrent-user-requests", "3", "--gap-num", "4",
                  "--no-aging-variant"])
    out = capsys.readouterr().out
    assert "first token within its class's target" in out
    assert "%" in out.split("first token within its class's target")[1].splitlines()[3]
