"""A request's way in: stored first, then handed to classification once the row is committed.

Apart from `services` (which store) and `tasks` (which classify), so that neither has to import the other."""
from django.db import transaction

from . import services, tasks


def submit_request(*, text, caller_name="", callback_number="", location=""):
    request = services.store_request(text=text, caller_name=caller_name, callback_number=callback_number,
                                     location=location)
    transaction.on_commit(lambda: tasks.enqueue_classification(request.pk))
    return request
