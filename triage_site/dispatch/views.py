from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import selectors
from .permissions import dispatcher_required


@login_required
@dispatcher_required
def board(request):
    return render(request, "dispatch/board.html", {"board": selectors.board_snapshot()})
