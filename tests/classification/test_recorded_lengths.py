"""The length predictor against answers actually written: Kendall's tau from the database, and a refit."""
import io
import json
import shutil

import pytest
from django.core.management import CommandError, call_command

from triage_site.classification import head
from triage_site.intake.models import MedicalRequest, Status

pytestmark = pytest.mark.django_db


def answered(text, predicted, generated, **fields):
    return MedicalRequest.objects.create(text=text, status=Status.DONE, urgency=2, predicted_output_tokens=predicted,
                                         generated_tokens=generated, answer="x", **fields)


def evaluate():
    out = io.StringIO()
    call_command("evaluate_classifier", lengths_from_db=True, json=True, stdout=out)
    return json.loads(out.getvalue())


def test_tau_ranks_predicted_against_generated_lengths_of_standing_answers():
    for i, (predicted, generated) in enumerate([(60, 40), (140, 120), (260, 200), (380, 390)]):
        answered(f"request {i}", predicted, generated)
    assert evaluate()["kendall_tau"] == pytest.approx(1.0)
    answered("reversed", 380, 10)  # one answer out of order
    report = evaluate()
    assert report["n"] == 5 and report["kendall_tau"] < 1.0 and report["bar"] == 0.62
    # unfinished and failed requests are left out; a withdrawn answer counts with the tokens it cost
    MedicalRequest.objects.create(text="running", status=Status.RUNNING, predicted_output_tokens=60, generated_tokens=5)
    MedicalRequest.objects.create(text="failed", status=Status.FAILED, predicted_output_tokens=60, generated_tokens=9)
    assert evaluate()["n"] == 5
    answered("withdrawn", 60, 55, answer_withdrawn="a loop")
    assert evaluate()["n"] == 6


def test_too_few_recorded_answers_are_refused_clearly():
    answered("only one", 60, 40)
    with pytest.raises(CommandError, match="needs at least 2"):
        evaluate()
    with pytest.raises(CommandError, match="at least 50 are needed"):
        call_command("train_classifier", lengths_from_db=True, stdout=io.StringIO())


def test_the_length_model_is_refitted_on_recorded_answers_and_the_urgency_model_kept(tmp_path, loaded_model):
    out = tmp_path / "urgency_head.joblib"
    shutil.copy(head.ARTIFACT_PATH, out)
    texts = ["Prescription renewal, no symptoms", "Mild sore throat since yesterday", "Sprained ankle, can walk",
             "Chest pain spreading to the arm, sweating", "Not breathing, CPR started", "Cut finger, small bleed"]
    for i, text in enumerate(texts):
        answered(text, 140, [50, 60, 150, 260, 380, 55][i])
    call_command("train_classifier", lengths_from_db=True, min_recorded=5, out=str(out), stdout=io.StringIO())
    refitted = head.load(out)
    original = head.load(head.ARTIFACT_PATH)
    assert refitted.meta["length_refit"]["rows"] == 6
    assert sorted(int(c) for c in refitted.length_model.classes_) == [0, 1, 2, 3]
    kept, shipped = refitted.urgency_model, original.urgency_model
    for model, before in zip([kept.multinomial, *kept.cuts], [shipped.multinomial, *shipped.cuts]):
        assert (model.coef_ == before.coef_).all()
