import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from triage_site.guidance.selectors import card_views
from triage_site.permissions import dispatcher_required, is_supervisor, supervisor_required

from . import alerts, overrides, selectors, submission
from .forms import BulkRaiseForm, MedicalRequestForm, UrgencyOverrideForm
from .models import AlertAcknowledgement, MedicalRequest, UrgencyOverride


@login_required
@dispatcher_required
def submit(request):
    if request.method == "POST":
        form = MedicalRequestForm(request.POST)
        if form.is_valid():
            medical_request = submission.submit_request(**form.cleaned_data)
            return redirect("intake:detail", pk=medical_request.pk)
    else:
        form = MedicalRequestForm()
    return render(request, "intake/submit.html", {"form": form})


@login_required
@dispatcher_required
def detail(request, pk):
    medical_request = get_object_or_404(MedicalRequest, pk=pk)
    return render(request, "intake/detail.html", {
        "medical_request": medical_request,
        "overrides": medical_request.overrides.select_related("changed_by"),
        "can_override": is_supervisor(request.user) and medical_request.is_open,
        "override_form": UrgencyOverrideForm(initial={"new_urgency": medical_request.urgency}),
        "urgency_prompt": selectors.urgency_prompt(medical_request),
        "cards": card_views(medical_request.cards, medical_request.card_texts),
        "alert": selectors.alert_state(medical_request),
    })


@require_POST
@login_required
@dispatcher_required
def acknowledge(request, pk):
    try:
        ack = alerts.acknowledge(pk, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages), extra_tags="alert")
    else:
        messages.success(request, f"Alert acknowledged after {ack.seconds_to_acknowledge:.0f} s.", extra_tags="alert")
    return redirect("intake:detail", pk=pk)


@require_POST
@login_required
@supervisor_required
def override(request, pk):
    form = UrgencyOverrideForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("intake:detail", pk=pk)
    return _change_urgency(request, pk, lambda: overrides.override_urgency(
        pk, new_urgency=form.cleaned_data["new_urgency"], reason=form.cleaned_data["reason"], user=request.user),
        lambda override: f"Urgency of request {pk} changed; the scheduler applies it at its next step.")


@require_POST
@login_required
@supervisor_required
def confirm_urgency(request, pk):
    return _change_urgency(request, pk, lambda: overrides.confirm_urgency(pk, user=request.user),
                           lambda override: f"Urgency {override.new_urgency} of request {pk} confirmed.")


def _change_urgency(request, pk, change, success_message):
    """Run one audited urgency change and report its outcome on the request's page."""
    try:
        override = change()
    except MedicalRequest.DoesNotExist:
        messages.error(request, f"There is no request {pk}.")
        return redirect("intake:overrides")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success_message(override))
    return redirect("intake:detail", pk=pk)


@login_required
@supervisor_required
def overrides_index(request):
    rows = UrgencyOverride.objects.select_related("request", "changed_by")
    if request.GET.get("missed") == "under":
        rows = [row for row in rows if row.model_urgency is not None and row.new_urgency < row.model_urgency]
    return render(request, "intake/overrides.html", {"overrides": rows, "missed": request.GET.get("missed", "")})


@login_required
@supervisor_required
def overrides_export(request):
    response = StreamingHttpResponse(overrides.export_jsonl(UrgencyOverride.objects.all()),
                                     content_type="application/x-ndjson")
    response["Content-Disposition"] = 'attachment; filename="urgency-overrides.jsonl"'
    return response


@login_required
@supervisor_required
def acknowledgements_export(request):
    rows = (json.dumps(row) + "\n" for row in alerts.export_rows(AlertAcknowledgement.objects.all()))
    response = StreamingHttpResponse(rows, content_type="application/x-ndjson")
    response["Content-Disposition"] = 'attachment; filename="alert-acknowledgements.jsonl"'
    return response


@login_required
@supervisor_required
def bulk_raise(request):
    form = BulkRaiseForm(request.POST or None)
    matches = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            matches = overrides.open_requests_mentioning(data["phrase"])
        except ValidationError as error:
            form.add_error("phrase", error)
        else:
            if data["confirm"]:
                made = overrides.bulk_raise(matches, new_urgency=data["new_urgency"], reason=data["reason"],
                                            user=request.user, label=f"mentions {data['phrase']!r}")
                messages.success(request, f"Raised {len(made)} open request(s) to urgency {data['new_urgency']}.")
                return redirect("intake:overrides")
            form = BulkRaiseForm(initial={**data, "confirm": True})
    return render(request, "intake/bulk_raise.html", {"form": form, "matches": matches})
