"""Celery application; eager (in-process) unless a Redis broker is configured."""
import logging
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage_site.settings")
logger = logging.getLogger(__name__)

app = Celery("triage_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def load_models_at_start(**_):
    """Each worker process loads the classifier's models as it starts, so the first call it classifies does not
    wait seconds for them (its protocol cards are on screen that much sooner). A failure is logged and the
    first task loads them instead; TRIAGE_CELERY_PRELOAD_MODELS=0 leaves them to the first task."""
    from django.conf import settings

    from triage_site.intake.tasks import load_models

    if not settings.TRIAGE_CELERY_PRELOAD_MODELS:
        return
    try:
        load_models()
    except Exception:  # noqa: BLE001 - a worker must start even when the models cannot load yet
        logger.exception("could not load the classifier's models at worker start; the first task will load them")
    else:
        logger.info("classifier models loaded at worker start")
