from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from triage_site.intake.models import Status
from triage_site.permissions import dispatcher_required

from . import selectors

STATUS_FILTERS = [(value, label) for value, label in Status.choices] + [("needs_review", "Needs review")]


@login_required
@dispatcher_required
def board(request):
    return render(request, "dispatch/board.html", {
        "board": selectors.board_snapshot(),
        "statuses": STATUS_FILTERS,
    })
