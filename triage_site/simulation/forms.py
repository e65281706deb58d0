"""Forms for a synthetic comparison and a replay of recorded traffic, with messages a dispatcher can act on.

Field checks give specific messages; then the simulator's own validation (SimulationParams.validate) runs on
the assembled parameters and any ValueError it raises is shown as a form error, so the page never accepts what
the simulator would reject.
"""
import argparse
import json
import re
from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from scheduler.cli_args import parse_seeds
from scheduler.workload import check_confusion

from . import comparison
from .selectors import EmptyWindow, recorded_trace

MAX_SEEDS = 20
MAX_GAP_NUM = 2000
MAX_BURST = 200
MAX_GAP_S = 3600  # an hour between arrival instants; more only makes every wait infinite in the results
MAX_WINDOW = timedelta(days=31)
MAX_SIMULATED_REQUESTS = 200_000
SEEDS_RE = re.compile(r"^\s*-?\d+\s*(-\s*-?\d+\s*)?$|^\s*-?\d+\s*(,\s*-?\d+\s*)*$")


def _num(field_cls, label, initial, help_text="", **kwargs):
    return field_cls(label=label, initial=initial, help_text=help_text, **kwargs)


class HardwareForm(forms.Form):
    """The fields shared by both kinds of run: hardware, batching, classifier and scheduler options."""

    setting = forms.ChoiceField(label="Hardware setting", choices=[(s, s) for s in comparison.SETTING_CHOICES],
                                initial="A100_4B", help_text="GPU and model size of the paper's cost models.")
    batch_size = _num(forms.IntegerField, "Batch size", 16, "Most requests running at once.")
    token_budget = _num(forms.IntegerField, "Token budget per step", 2048, "Prefill + decode tokens per step.")
    classifier_latency = _num(forms.FloatField, "Classifier latency (s)", 0.003, "Seconds per classifier call.")
    classifier_batch_size = _num(forms.IntegerField, "Classifier batch size", 5)
    aging = forms.BooleanField(label="Aging", required=False, initial=False,
                               help_text="Promote long-waiting requests (PJF and semantic).")
    aging_bound = _num(forms.FloatField, "Aging bound", 2.0, "Multiple of the FCFS admission position (≥ 1).")
    aging_mode = forms.ChoiceField(
        label="Aging kind", initial="admissions", required=False,  # left out: by admissions, as before it existed
        choices=[("admissions", "By admissions (within the bound × FCFS position)"),
                 ("deadline", "By clinical target (in class 0 at 75% of it)")],
        help_text="Deadline: promoted as the wait nears the class's first-token target; never preempts.")
    preemption = forms.BooleanField(label="Urgency preemption", required=False, initial=True,
                                    help_text="Let a more urgent request displace a running one (semantic).")

    # (field, low, low_inclusive, high, message)
    RANGES = {
        "batch_size": (1, True, 1024, "Batch size must be a whole number from 1 to 1024."),
        "token_budget": (1, True, 65536, "Token budget must be a whole number from 1 to 65536."),
        "classifier_latency": (0, True, 60, "Classifier latency must be between 0 and 60 seconds."),
        "classifier_batch_size": (1, True, 1024, "Classifier batch size must be a whole number from 1 to 1024."),
        "aging_bound": (1, True, 1000, "Aging bound must be at least 1 (and at most 1000)."),
    }

    def clean(self):
        cleaned = super().clean()
        cleaned["aging_mode"] = cleaned.get("aging_mode") or "admissions"
        for name, (low, inclusive, high, message) in self.RANGES.items():
            value = cleaned.get(name)
            if value is None:
                continue
            if value < low or (not inclusive and value == low) or (high is not None and value > high):
                self.add_error(name, message)
        return cleaned

    def param_values(self):
        names = [n for n in comparison.PARAM_FIELDS if n in self.cleaned_data]
        return {n: self.cleaned_data[n] for n in names}

    def check_with_simulator(self, params, policies):
        """The simulator's own validation; its message becomes a form error."""
        if self.errors:
            return
        try:
            for policy in policies:
                comparison.build_params(params, policy, 0).scheduler_config()
        except ValueError as exc:
            self.add_error(None, f"The simulator rejects these parameters: {exc}")


def measured_confusion():
    """The current classifier's confusion matrix on the independent set, as evaluate_classifier --json measured it."""
    with open(settings.TRIAGE_MEASURED_CONFUSION, encoding="utf-8") as handle:
        data = json.load(handle)
    return {"classifier": data["classifier"], "n": data["n"], "confusion": check_confusion(data["confusion"], "measured")}


class SyntheticRunForm(HardwareForm):
    policies = forms.MultipleChoiceField(
        label="Policies", choices=[(p, p.upper() if p != "semantic" else "Semantic") for p in comparison.POLICY_CHOICES],
        initial=list(comparison.POLICY_CHOICES), widget=forms.CheckboxSelectMultiple,
        help_text="Ratios are computed against FCFS, so keep it selected to see them.",
        error_messages={"required": "Choose at least one policy."})
    # The defaults are the paper's headline workload (A100_4B, bursts of up to 50 every 0.01 s): a queue
    # builds, so the first run shows how the policies differ. A light load gives every policy the same numbers.
    user_request_gap = _num(forms.FloatField, "Request gap (s)", 0.01, "Seconds between arrival instants.")
    max_concurrent_user_requests = _num(forms.IntegerField, "Burst size", 50,
                                        "Each instant brings 0 to this many requests.")
    gap_num = _num(forms.IntegerField, "Arrival instants", 20)
    urgency_errors = forms.ChoiceField(
        label="Urgency errors", initial="rate", required=False,  # left out: the rate and distance below
        choices=[("rate", "By the error rate and distance below"),
                 ("measured", "As measured by the current classifier")],
        help_text="Measured: each request's predicted urgency is drawn from the classifier's confusion matrix on the "
                  "independent evaluation set (data/classifier/measured_confusion.json).")
    priority_error_rate = _num(forms.FloatField, "Urgency error rate", 0.0, "Share of wrong urgency predictions (0–1).")
    priority_error_distance = _num(forms.IntegerField, "Urgency error distance", 1, "Classes off when wrong (0–4).")
    length_error_rate = _num(forms.FloatField, "Length error rate", 0.0, "Share of wrong length predictions (0–1).")
    length_error_distance = _num(forms.FloatField, "Length error distance", 0.5, "Relative error when wrong (0–1).")
    seeds = forms.CharField(label="Seeds", initial="0", max_length=200,
                            help_text=f"Like 0-9 or 1,3,5; at most {MAX_SEEDS}.")

    field_order = ["policies", "setting", "user_request_gap", "max_concurrent_user_requests", "gap_num", "batch_size",
                   "urgency_errors", "priority_error_rate", "priority_error_distance", "length_error_rate",
                   "length_error_distance", "classifier_latency", "classifier_batch_size", "aging", "aging_bound",
                   "aging_mode", "preemption", "seeds",
                   "token_budget"]

    RANGES = {
        **HardwareForm.RANGES,
        "user_request_gap": (0, False, MAX_GAP_S,
                             f"Request gap must be greater than 0 seconds and at most {MAX_GAP_S:,} seconds."),
        "max_concurrent_user_requests": (1, True, MAX_BURST, f"Burst size must be a whole number from 1 to {MAX_BURST}."),
        "gap_num": (1, True, MAX_GAP_NUM, f"Arrival instants must be a whole number from 1 to {MAX_GAP_NUM}."),
        "priority_error_rate": (0, True, 1, "Urgency error rate must be between 0 and 1."),
        "priority_error_distance": (0, True, 4, "Urgency error distance must be a whole number from 0 to 4."),
        "length_error_rate": (0, True, 1, "Length error rate must be between 0 and 1."),
        "length_error_distance": (0, True, 1, "Length error distance must be between 0 and 1."),
    }

    def clean_seeds(self):
        text = self.cleaned_data["seeds"].strip()
        message = f"Seeds must look like 0-9 or 1,3,5 (whole numbers), at most {MAX_SEEDS} of them."
        if not SEEDS_RE.match(text):
            raise forms.ValidationError(message)
        bounds = re.fullmatch(r"\s*(-?\d+)\s*-\s*(-?\d+)\s*", text)
        if bounds and not 0 < int(bounds.group(2)) - int(bounds.group(1)) + 1 <= MAX_SEEDS:
            raise forms.ValidationError(f"{message} Got a range of {int(bounds.group(2)) - int(bounds.group(1)) + 1}.")
        try:
            seeds = parse_seeds(text.replace(" ", ""))
        except argparse.ArgumentTypeError:
            raise forms.ValidationError(message) from None
        seeds = list(dict.fromkeys(seeds))
        if not 0 < len(seeds) <= MAX_SEEDS:
            raise forms.ValidationError(f"{message} Got {len(seeds)}.")
        return seeds

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            measured = measured_confusion()
        except (OSError, KeyError, ValueError):
            return  # the choice then fails with its own message when picked
        self.fields["urgency_errors"].choices = [
            ("rate", "By the error rate and distance below"),
            ("measured", f"As measured by the current classifier ({measured['classifier']}, {measured['n']} requests)"),
        ]

    def clean_urgency_errors(self):
        choice = self.cleaned_data.get("urgency_errors") or "rate"
        if choice == "measured":
            try:
                measured_confusion()
            except (OSError, KeyError, ValueError) as error:
                raise forms.ValidationError(f"No measured confusion matrix is available ({error}); run "
                                            "manage.py evaluate_classifier --json on the independent set.") from None
        return choice

    def param_values(self):
        values = super().param_values()
        if self.cleaned_data.get("urgency_errors") == "measured":
            values["confusion"] = measured_confusion()["confusion"]
        return values

    def clean(self):
        cleaned = super().clean()
        self.check_with_simulator(self.param_values(), cleaned.get("policies") or ())
        if not self.errors:
            # each instant brings randint(0, burst) requests: burst / 2 on average
            expected = (cleaned["gap_num"] * cleaned["max_concurrent_user_requests"] / 2 * len(cleaned["seeds"])
                        * len(cleaned["policies"]))
            if expected > MAX_SIMULATED_REQUESTS:
                self.add_error(None, f"This run would simulate about {expected:,.0f} requests; at most "
                                     f"{MAX_SIMULATED_REQUESTS:,} per run. Use fewer arrival instants, smaller "
                                     "bursts, fewer seeds or fewer policies.")
        return cleaned


def _local_input(value):
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")


class ReplayForm(HardwareForm):
    start = forms.DateTimeField(label="Window start", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                help_text="Requests created at or after this time…")
    end = forms.DateTimeField(label="Window end", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                              help_text="…and before this one.")
    field_order = ["start", "end", "setting", "batch_size", "classifier_latency", "classifier_batch_size", "aging",
                   "aging_bound", "aging_mode", "preemption", "token_budget"]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "replay_%s")  # shares the page with the synthetic form: distinct ids
        super().__init__(*args, **kwargs)
        now = timezone.localtime()
        self.fields["start"].initial = _local_input(now.replace(hour=0, minute=0, second=0, microsecond=0))
        self.fields["end"].initial = _local_input(now + timedelta(minutes=1))
        self.trace, self.trace_notes = [], {}

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end <= start:
                self.add_error("end", "The window must end after it starts.")
            elif end - start > MAX_WINDOW:
                self.add_error("end", "The window may be at most 31 days long.")
        self.check_with_simulator(self.param_values(), comparison.POLICY_CHOICES)
        if not self.errors:
            try:
                self.trace, self.trace_notes = recorded_trace(start, end)
            except EmptyWindow as exc:
                self.add_error(None, str(exc))
            else:
                if len(self.trace) * len(comparison.POLICY_CHOICES) > MAX_SIMULATED_REQUESTS:
                    self.add_error(None, f"The window holds {len(self.trace):,} classified requests; at most "
                                         f"{MAX_SIMULATED_REQUESTS // len(comparison.POLICY_CHOICES):,} can be replayed "
                                         "at once. Choose a shorter window.")
        return cleaned
