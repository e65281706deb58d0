import pytest


@pytest.fixture
def worker_ran():
    """Celery is eager in embedded mode, so a run is finished when the POST returns. Against the real stack
    (`make test-stack`, REDIS_URL set) no test worker consumes the queue: the run must still be pending, and this
    does what a worker would do with the message."""
    from django.conf import settings

    from triage_site.simulation.models import SimulationRun
    from triage_site.simulation.tasks import run_simulation_run

    def finish(run):
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            assert run.status == SimulationRun.Status.PENDING
            run_simulation_run(run.pk)
            run.refresh_from_db()
        return run

    return finish
