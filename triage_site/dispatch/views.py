from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from triage_site.intake.models import Status, Urgency

from . import selectors
from .permissions import dispatcher_required

STATUS_FILTERS = [(value, label) for value, label in Status.choices] + [("needs_review", "Needs review")]


@login_required
@dispatcher_required
def board(request):
    return render(request, "dispatch/board.html", {
        "board": selectors.board_snapshot(),
        "urgencies": Urgency.choices,
        "statuses": STATUS_FILTERS,
    })
