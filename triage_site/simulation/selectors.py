"""Recorded traffic -> simulator trace records (the JSON-lines trace format of scheduler/workload.py).

Mapping (see docs/simulation.md):

* requests with created_at in [start, end) and a final urgency (classified); unclassified ones are skipped;
* arrival_time = seconds since the window start;
* urgency = the final urgency (after rules and dispatcher overrides: the best truth we have);
* predicted_urgency = model_urgency (what the scheduler would have seen) when stored, else the final urgency;
* prompt_tokens = the stored prompt_tokens, else an estimate of one token per 4 characters of text;
* output_tokens = generated_tokens for a finished request, else the predicted length (else the configured
  answer limit); predicted_output_tokens = the stored prediction, else output_tokens.
"""
import math

from django.conf import settings

from triage_site.intake.models import MedicalRequest, Status

CHARS_PER_TOKEN = 4


class EmptyWindow(ValueError):
    """The window holds no classified request."""


def estimate_prompt_tokens(text):
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def recorded_trace(start, end):
    """Returns (records, notes). Raises EmptyWindow when no classified request was created in [start, end)."""
    rows = (MedicalRequest.objects.filter(created_at__gte=start, created_at__lt=end)
            .order_by("created_at", "id")
            .values("id", "text", "status", "urgency", "model_urgency", "prompt_tokens", "generated_tokens",
                    "predicted_output_tokens", "created_at"))
    fallback_output = max(1, int(getattr(settings, "TRIAGE_MAX_ANSWER_TOKENS", None) or 400))
    records = []
    notes = {"requests_in_window": 0, "unclassified_skipped": 0, "prompt_tokens_estimated": 0,
             "output_tokens_from_prediction": 0, "output_tokens_from_limit": 0, "urgency_from_model": 0}
    for row in rows:
        notes["requests_in_window"] += 1
        if row["urgency"] is None:
            notes["unclassified_skipped"] += 1
            continue
        if row["prompt_tokens"]:
            prompt = row["prompt_tokens"]
        else:
            prompt = estimate_prompt_tokens(row["text"])
            notes["prompt_tokens_estimated"] += 1
        predicted_output = row["predicted_output_tokens"] or None
        if row["status"] == Status.DONE and row["generated_tokens"]:
            output = row["generated_tokens"]
        elif predicted_output:
            output = predicted_output
            notes["output_tokens_from_prediction"] += 1
        else:
            output = fallback_output
            notes["output_tokens_from_limit"] += 1
        if row["model_urgency"] is not None:
            predicted_urgency = row["model_urgency"]
            notes["urgency_from_model"] += 1
        else:
            predicted_urgency = row["urgency"]
        records.append({
            "request_id": row["id"],
            "arrival_time": max(0.0, (row["created_at"] - start).total_seconds()),
            "urgency": row["urgency"],
            "prompt_tokens": prompt,
            "output_tokens": output,
            "predicted_urgency": predicted_urgency,
            "predicted_output_tokens": predicted_output or output,
        })
    if not records:
        if notes["requests_in_window"]:
            raise EmptyWindow(f"The window holds {notes['requests_in_window']} request(s), none of them classified "
                              "yet: there is nothing to replay.")
        raise EmptyWindow("No requests were received in this window: there is nothing to replay.")
    notes["replayed"] = len(records)
    return records, notes
