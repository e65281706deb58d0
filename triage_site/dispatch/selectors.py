"""Reads for the dispatcher board. One snapshot serves the first page load, every
websocket update and every reconnect, so what a dispatcher sees is always the database's state."""
from django.utils import timezone

from triage_site.intake.models import OPEN_STATUSES, MedicalRequest, Status

from .models import WorkerHeartbeat

RECENTLY_FINISHED = 20
HEARTBEAT_STALE_SECONDS = 10


def queue_positions():
    """1-based positions in the scheduler's order as last reported by the worker."""
    heartbeat = WorkerHeartbeat.objects.order_by("-updated_at").first()
    if heartbeat is None:
        return {}, None
    return {int(pk): index + 1 for index, pk in enumerate(heartbeat.queue_order)}, heartbeat


def serialize_request(medical_request, position, now):
    waited_until = medical_request.first_token_at or now
    return {
        "id": medical_request.pk,
        "text": medical_request.text[:300],
        "location": medical_request.location,
        "status": medical_request.status,
        "status_label": medical_request.get_status_display(),
        "urgency": medical_request.urgency,
        "urgency_label": medical_request.get_urgency_display() if medical_request.urgency is not None else "",
        "needs_review": medical_request.needs_review,
        "rule_reason": medical_request.rule_reason,
        "predicted_output_tokens": medical_request.predicted_output_tokens,
        "generated_tokens": medical_request.generated_tokens,
        "queue_position": position,
        "created_at": medical_request.created_at.isoformat(),
        "waiting_seconds": round((waited_until - medical_request.created_at).total_seconds(), 1),
    }


def board_snapshot():
    now = timezone.now()
    positions, heartbeat = queue_positions()
    open_requests = list(MedicalRequest.objects.filter(status__in=OPEN_STATUSES))
    finished = list(
        MedicalRequest.objects.filter(status__in=(Status.DONE, Status.FAILED)).order_by("-finished_at")[
            :RECENTLY_FINISHED
        ]
    )

    def board_order(medical_request):
        position = positions.get(medical_request.pk)
        urgency = 5 if medical_request.urgency is None else medical_request.urgency
        return (position is None, position or 0, urgency, medical_request.created_at)

    open_requests.sort(key=board_order)
    worker_alive = heartbeat is not None and (now - heartbeat.updated_at).total_seconds() < HEARTBEAT_STALE_SECONDS
    return {
        "generated_at": now.isoformat(),
        "open": [serialize_request(r, positions.get(r.pk), now) for r in open_requests],
        "finished": [serialize_request(r, None, now) for r in finished],
        "worker": {"alive": worker_alive, "stats": heartbeat.stats if heartbeat else {}},
    }


def request_snapshot(request_id):
    medical_request = MedicalRequest.objects.filter(pk=request_id).first()
    if medical_request is None:
        return None
    positions, _ = queue_positions()
    data = serialize_request(medical_request, positions.get(medical_request.pk), timezone.now())
    data["text"] = medical_request.text
    data["answer"] = medical_request.answer
    data["error"] = medical_request.error
    return data
