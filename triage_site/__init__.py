"""The Django project: intake, classification, dispatch, live and simulation apps."""
from .celery import app as celery_app

__all__ = ("celery_app",)
