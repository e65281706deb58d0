"""The Celery task that runs a stored SimulationRun.

`run_simulation_run(run_id)` is acknowledged late (a worker dying mid-run leaves the message to be redelivered)
and idempotent: a run already done or failed is skipped; a run left `running` by a dead worker is run again
from the start (simulations are deterministic, so the result is the same). Progress goes to the database at
most every PROGRESS_INTERVAL_S seconds; any exception marks the run failed with its message.

Simulations share the Celery workers with the classification of new calls, and a large one takes minutes: on
the full stack a run starts only when no other is running (`claim`), and otherwise waits in the broker (a retry
every BUSY_RETRY_S seconds holds no worker process), so runs never hold more than one of the worker's processes.
"""
import logging
import time
from datetime import timedelta

from celery import shared_task
from django.db.models import Exists
from django.utils import timezone

from . import comparison
from .models import SimulationRun

logger = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5
BUSY_RETRY_S = 5
# A run still "running" after this long is taken for one a dead worker left (the largest run takes ~3 minutes).
RUNNING_AT_MOST_S = 15 * 60
Status = SimulationRun.Status


def claim(run_id, *, alone=True):
    """Mark the run running: "claimed"; "finished" when it is done, failed or gone; with `alone`, "busy" while
    another run is running (started within RUNNING_AT_MOST_S)."""
    open_run = SimulationRun.objects.filter(pk=run_id, status__in=(Status.PENDING, Status.RUNNING))
    runs = open_run
    if alone:
        since = timezone.now() - timedelta(seconds=RUNNING_AT_MOST_S)
        others = SimulationRun.objects.filter(status=Status.RUNNING, started_at__gte=since).exclude(pk=run_id)
        runs = runs.filter(~Exists(others))
    if runs.update(status=Status.RUNNING, started_at=timezone.now(), progress=0.0, error=""):
        return "claimed"
    return "busy" if open_run.exists() else "finished"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_simulation_run(self, run_id):
    # Eager (embedded mode) there is no worker process to keep free, and a retry would recurse: run now.
    outcome = claim(run_id, alone=not self.request.is_eager)
    if outcome == "busy":
        raise self.retry(countdown=BUSY_RETRY_S)
    if outcome == "finished":
        logger.info("simulation run %s is finished or gone; not running it again", run_id)
        return
    run = SimulationRun.objects.get(pk=run_id)
    last_write = [0.0]

    def progress(fraction):
        now = time.monotonic()
        if now - last_write[0] >= PROGRESS_INTERVAL_S:
            last_write[0] = now
            SimulationRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
                progress=min(1.0, max(0.0, fraction)))

    try:
        result = comparison.execute(run.params, run.policies, run.seeds,
                                trace=run.trace if run.source == SimulationRun.Source.RECORDED else None,
                                progress=progress)
        # inside the try: a result the database refuses (an infinite mean) fails the run instead of leaving it
        # "running" for ever
        SimulationRun.objects.filter(pk=run_id).update(status=Status.DONE, progress=1.0, result=result,
                                                       finished_at=timezone.now())
    except Exception as exc:  # noqa: BLE001 - any failure is shown on the run's page
        logger.exception("simulation run %s failed", run_id)
        message = str(exc) or exc.__class__.__name__
        SimulationRun.objects.filter(pk=run_id).update(
            status=Status.FAILED, error=f"{exc.__class__.__name__}: {message}", finished_at=timezone.now())


def enqueue(run):
    """Queue the run; if the broker cannot take it, the run fails with the reason instead of staying pending."""
    try:
        run_simulation_run.delay(run.pk)
    except Exception as exc:  # noqa: BLE001 - broker outage
        logger.exception("could not queue simulation run %s", run.pk)
        SimulationRun.objects.filter(pk=run.pk, status=Status.PENDING).update(
            status=Status.FAILED, error=f"Could not queue the run: {exc}", finished_at=timezone.now())

