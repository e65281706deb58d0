"""Simulation pages: new runs (synthetic or recorded traffic), the list of runs, each run's page and downloads."""
import json

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from triage_site.permissions import dispatcher_required

from . import comparison, tasks
from .forms import ReplayForm, SyntheticRunForm
from .models import SimulationRun

RUNS_LISTED = 50


def _index(request, form=None, replay_form=None, status=200):
    return render(request, "simulation/index.html", {
        "form": form or SyntheticRunForm(),
        "replay_form": replay_form or ReplayForm(),
        "runs": SimulationRun.objects.select_related("created_by")[:RUNS_LISTED],
    }, status=status)


def _start_run(request, form_class, form_name, build_run):
    """GET shows the page; a valid POST stores the run built from the form and queues it."""
    if request.method != "POST":
        return _index(request)
    form = form_class(request.POST)
    if not form.is_valid():
        return _index(request, status=400, **{form_name: form})
    run = build_run(form)
    run.created_by = request.user
    run.save()
    transaction.on_commit(lambda: tasks.enqueue(run))
    return redirect(run)


def _synthetic_run(form):
    return SimulationRun(params=form.param_values(), policies=list(form.cleaned_data["policies"]),
                         seeds=form.cleaned_data["seeds"], source=SimulationRun.Source.SYNTHETIC)


def _recorded_run(form):
    return SimulationRun(params=form.param_values(), policies=list(comparison.POLICY_CHOICES), seeds=[0],
                         source=SimulationRun.Source.RECORDED, window_start=form.cleaned_data["start"],
                         window_end=form.cleaned_data["end"], trace=form.trace, trace_notes=form.trace_notes)


@login_required
@dispatcher_required
@require_http_methods(["GET", "POST"])
def index(request):
    return _start_run(request, SyntheticRunForm, "form", _synthetic_run)


@login_required
@dispatcher_required
@require_http_methods(["GET", "POST"])
def replay(request):
    return _start_run(request, ReplayForm, "replay_form", _recorded_run)


def _status(run):
    return {"id": run.pk, "status": run.status, "progress": run.progress, "error": run.error,
            "finished": run.is_finished, "url": reverse("simulation:detail", args=[run.pk])}


@login_required
@dispatcher_required
@require_GET
def detail(request, run_id):
    run = get_object_or_404(SimulationRun.objects.select_related("created_by"), pk=run_id)
    data = {"status": _status(run), "statusUrl": reverse("simulation:status", args=[run.pk]),
            "result": run.result if run.status == SimulationRun.Status.DONE else None}
    return render(request, "simulation/detail.html", {"run": run, "data": data,
                                                      "params": sorted(run.params.items())})


@login_required
@dispatcher_required
@require_GET
def status(request, run_id):
    run = get_object_or_404(SimulationRun.objects.only("id", "status", "progress", "error"), pk=run_id)
    return JsonResponse(_status(run))


def _done_run(run_id):
    return get_object_or_404(SimulationRun, pk=run_id, status=SimulationRun.Status.DONE)


@login_required
@dispatcher_required
@require_GET
def results_csv(request, run_id):
    run = _done_run(run_id)
    response = HttpResponse(comparison.result_csv(run.result), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="simulation-{run.pk}.csv"'
    return response


@login_required
@dispatcher_required
@require_GET
def results_json(request, run_id):
    run = _done_run(run_id)
    body = {"id": run.pk, "source": run.source, "params": run.params, "policies": run.policies,
            "seeds": run.seeds, "window_start": run.window_start and run.window_start.isoformat(),
            "window_end": run.window_end and run.window_end.isoformat(), "trace_notes": run.trace_notes,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at and run.finished_at.isoformat(), "result": run.result}
    response = HttpResponse(json.dumps(body, indent=1, sort_keys=True), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="simulation-{run.pk}.json"'
    return response
