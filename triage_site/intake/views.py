from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render

from triage_site.dispatch.permissions import dispatcher_required

from . import services
from .forms import MedicalRequestForm
from .models import MedicalRequest


@login_required
@dispatcher_required
def submit(request):
    if request.method == "POST":
        form = MedicalRequestForm(request.POST)
        if form.is_valid():
            medical_request = services.submit_request(**form.cleaned_data)
            return redirect("intake:detail", pk=medical_request.pk)
    else:
        form = MedicalRequestForm()
    return render(request, "intake/submit.html", {"form": form})


@login_required
@dispatcher_required
def detail(request, pk):
    medical_request = get_object_or_404(MedicalRequest, pk=pk)
    return render(request, "intake/detail.html", {"medical_request": medical_request})
