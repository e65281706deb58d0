"""Form validation: bad parameters give clear messages (no database needed)."""
import pytest

from triage_site.simulation.forms import SyntheticRunForm

GOOD = {"policies": ["fcfs", "semantic"], "setting": "A100_4B", "user_request_gap": "1", "max_concurrent_user_requests": "3",
        "gap_num": "4", "batch_size": "8", "token_budget": "2048", "priority_error_rate": "0", "priority_error_distance": "1",
        "length_error_rate": "0", "length_error_distance": "0.5", "classifier_latency": "0.003",
        "classifier_batch_size": "5", "aging_bound": "2", "preemption": "on", "seeds": "0-2"}


def form_with(**changes):
    data = {**GOOD, **changes}
    return SyntheticRunForm({k: v for k, v in data.items() if v is not None})


def test_good_parameters_are_accepted():
    form = form_with()
    assert form.is_valid(), form.errors
    assert form.cleaned_data["seeds"] == [0, 1, 2]
    assert form.param_values()["user_request_gap"] == 1.0


@pytest.mark.parametrize("field, value, message", [
    ("user_request_gap", "0", "Request gap must be greater than 0 seconds"),
    ("user_request_gap", "-2", "Request gap must be greater than 0 seconds"),
    ("user_request_gap", "1e308", "at most 3,600 seconds"),
    ("user_request_gap", "nan", "Enter a number."),
    ("max_concurrent_user_requests", "0", "Burst size must be a whole number from 1 to"),
    ("gap_num", "0", "Arrival instants must be a whole number from 1 to"),
    ("batch_size", "0", "Batch size must be a whole number from 1 to 1024."),
    ("priority_error_rate", "1.5", "Urgency error rate must be between 0 and 1."),
    ("length_error_rate", "-0.1", "Length error rate must be between 0 and 1."),
    ("length_error_distance", "2", "Length error distance must be between 0 and 1."),
    ("priority_error_distance", "5", "Urgency error distance must be a whole number from 0 to 4."),
    ("aging_bound", "0.5", "Aging bound must be at least 1"),
    ("classifier_latency", "-1", "Classifier latency must be between 0 and 60 seconds."),
    ("seeds", "0-99", "at most 20"),
    ("seeds", "0-1000000000", "at most 20"),
    ("seeds", "a,b", "Seeds must look like 0-9 or 1,3,5"),
    ("seeds", "5-3", "Seeds must look like 0-9 or 1,3,5"),
    ("seeds", ",".join(str(i) for i in range(21)), "at most 20"),
    ("policies", None, "Choose at least one policy."),
    ("setting", "H100_1T", "Select a valid choice."),
])
def test_bad_parameters_get_clear_errors(field, value, message):
    form = form_with(**{field: value})
    assert not form.is_valid()
    assert any(message in error for error in form.errors[field]), form.errors[field]


def test_simulator_validation_is_reported_as_a_form_error():
    # Each field is in range, but SchedulerConfig refuses a token budget below the batch size.
    form = form_with(batch_size="32", token_budget="16")
    assert not form.is_valid()
    assert any("The simulator rejects these parameters: token_budget (16) must be >= max_batch_size (32)" in e
               for e in form.non_field_errors())


def test_seed_lists_are_accepted():
    form = form_with(seeds="1, 3,5")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["seeds"] == [1, 3, 5]


def test_runs_too_large_to_simulate_are_refused():
    form = form_with(policies=["fcfs", "sjf", "pjf", "semantic"], gap_num="2000", max_concurrent_user_requests="200",
                     seeds="0-9")
    assert not form.is_valid()
    assert form.non_field_errors() == ["This run would simulate about 8,000,000 requests; at most 200,000 per run. "
                                       "Use fewer arrival instants, smaller bursts, fewer seeds or fewer policies."]


def test_aging_kind_defaults_to_admissions_and_offers_deadline():
    plain = form_with()
    assert plain.is_valid() and plain.param_values()["aging_mode"] == "admissions"
    deadline = form_with(aging="on", aging_mode="deadline")
    assert deadline.is_valid(), deadline.errors
    assert deadline.param_values()["aging_mode"] == "deadline" and deadline.param_values()["aging"] is True
    assert "aging_mode" in form_with(aging_mode="weekly").errors


def test_the_first_run_is_the_papers_headline_workload():
    fields = SyntheticRunForm().fields
    assert fields["setting"].initial == "A100_4B"
    assert (fields["user_request_gap"].initial, fields["max_concurrent_user_requests"].initial) == (0.01, 50)


def test_urgency_errors_as_measured_by_the_current_classifier():
    from triage_site.simulation.forms import measured_confusion

    form = form_with(urgency_errors="measured")
    assert form.is_valid(), form.errors
    measured = measured_confusion()
    assert form.param_values()["confusion"] == measured["confusion"]
    assert measured["classifier"] in dict(form.fields["urgency_errors"].choices)["measured"]
    plain = form_with()
    assert plain.is_valid() and "confusion" not in plain.param_values()


def test_the_measured_confusion_matrix_is_the_shipped_classifiers():
    """Retraining the head without measuring it again on the independent set fails here."""
    import json
    from pathlib import Path

    from triage_site.simulation.forms import measured_confusion

    root = Path(__file__).resolve().parents[2]
    version = json.loads((root / "data/classifier/model/urgency_head.json").read_text())["version"]
    assert measured_confusion()["classifier"].endswith(version)
    assert sum(map(sum, measured_confusion()["confusion"])) == measured_confusion()["n"]
