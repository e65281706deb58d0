"""Reads for the dispatcher board. One snapshot serves the first page load, every
websocket update and every reconnect, so what a dispatcher sees is always the database's state."""
import bisect
from collections import defaultdict

from django.db.models import Q
from django.utils import timezone

from django.conf import settings

from scheduler import targets
from scheduler.urgency import LEVELS, NUM_LEVELS
from triage_site.guidance.selectors import card_views
from triage_site.intake import alerts
from triage_site.intake.models import OPEN_STATUSES, AlertAcknowledgement, MedicalRequest, Status, Urgency

from .models import WorkerHeartbeat, WorkerSample

RECENTLY_FINISHED = 20
HEARTBEAT_STALE_SECONDS = 10
BOARD_TEXT_CHARS = 200
CHART_WINDOW_SECONDS = 3600
ALERT_WINDOW_SECONDS = 3600    # alerts older than this leave the board's alert queue (they stay on record)
CHART_BUCKET_SECONDS = 60      # waiting time / time to first token: one point per class per minute
QUEUE_SAMPLE_SECONDS = 30      # queue length per class: one sample every 30 s
TOKENS_BUCKET_SECONDS = 10     # worker tokens/s: mean over 10 s

# Fields that change every second by themselves; a row is "changed" only when something else changed.
TICKING_FIELDS = ("waiting_seconds", "target_state")


def _ts(moment):
    return None if moment is None else round(moment.timestamp(), 3)


WORKERS_SHOWN_S = 3600  # workers silent longer than this leave the board's list


def recent_heartbeats(now):
    """The heartbeats of the workers heard from in the last hour, latest first, else the last one ever: a handful
    of rows, read once per board snapshot."""
    recent = list(WorkerHeartbeat.objects.filter(
        updated_at__gte=now - timezone.timedelta(seconds=WORKERS_SHOWN_S)).order_by("-updated_at"))
    if recent:
        return recent
    last = WorkerHeartbeat.objects.order_by("-updated_at").first()
    return [last] if last else []


def queue_positions(heartbeats=None, now=None):
    """1-based positions in each worker's scheduler order, as the live workers last reported them (a request is
    held by one worker: its position is in that worker's queue), and the latest heartbeat."""
    now = now or timezone.now()
    heartbeats = recent_heartbeats(now) if heartbeats is None else heartbeats
    positions = {}
    for heartbeat in [h for h in heartbeats if _alive(h, now)] or heartbeats[:1]:
        positions.update({int(pk): index + 1 for index, pk in enumerate(heartbeat.queue_order)})
    return positions, heartbeats[0] if heartbeats else None


def _silent_after_s():
    """A worker is flagged silent within two lease periods without a heartbeat (by then its requests go to others)."""
    return min(HEARTBEAT_STALE_SECONDS, 2 * settings.TRIAGE_WORKER_LEASE_S)


def _alive(heartbeat, now):
    return (now - heartbeat.updated_at).total_seconds() < _silent_after_s()


def _state(heartbeat, now):
    if not _alive(heartbeat, now):
        return "silent"
    return "busy" if (heartbeat.stats or {}).get("step_running_s") else "alive"


def workers_view(heartbeats, now):
    """Every worker heard from in the last hour: alive or silent, its throughput, what it runs and its room."""
    out = []
    for heartbeat in sorted(heartbeats, key=lambda h: h.worker_name):
        if (now - heartbeat.updated_at).total_seconds() > WORKERS_SHOWN_S:
            continue
        stats = heartbeat.stats or {}
        out.append({"name": heartbeat.worker_name, "alive": _alive(heartbeat, now),
                    "last_seen_ts": _ts(heartbeat.updated_at), "state": _state(heartbeat, now),
                    "tokens_per_second": stats.get("tokens_per_second", 0.0), "running": int(stats.get("running") or 0),
                    "waiting": int(stats.get("waiting") or 0), "room": stats.get("room")})
    return out


STATUS_LABELS = dict(Status.choices)
URGENCY_LABELS = dict(Urgency.choices)
BOARD_FIELDS = (
    "id", "text", "location", "status", "urgency", "needs_review", "rule_reason", "predicted_output_tokens",
    "generated_tokens", "created_at", "first_token_at", "finished_at", "cards", "answer_withdrawn", "alerted_at",
    "claimed_by",
)
# The acknowledgement of its alert, read in the same query (a left join).
ACK_FIELDS = {
    "acknowledgement__acknowledged_at": "acknowledged_at",
    "acknowledgement__acknowledged_by__username": "acknowledged_by",
    "acknowledgement__seconds_to_acknowledge": "seconds_to_acknowledge",
}


def board_rows(queryset):
    return queryset.values(*BOARD_FIELDS, *ACK_FIELDS)


def board_values(medical_request):
    """A model instance as the plain row the board works on."""
    row = {name: getattr(medical_request, name) for name in BOARD_FIELDS}
    ack = AlertAcknowledgement.objects.filter(request=medical_request).select_related("acknowledged_by").first()
    for lookup, name in ACK_FIELDS.items():
        value = None if ack is None else getattr(ack, name)
        row[lookup] = value.username if name == "acknowledged_by" and value is not None else value
    return row


def alert_view(row, acknowledge_targets):
    """The request's alert for a dispatcher, or None. An alert whose request was lowered below the alert levels
    before anyone acknowledged it no longer asks for acknowledgement."""
    acknowledged_at = row["acknowledgement__acknowledged_at"]
    target = None if row["urgency"] is None else acknowledge_targets[row["urgency"]]
    if not alerts.alert_shown(row["alerted_at"], target, acknowledged_at is not None):
        return None
    return {
        "raised_ts": _ts(row["alerted_at"]),
        "target_s": target,
        "acknowledged_ts": _ts(acknowledged_at),
        "acknowledged_by": row["acknowledgement__acknowledged_by__username"],
        "seconds_to_acknowledge": row["acknowledgement__seconds_to_acknowledge"],
    }


class Targets:
    """The settings' targets, read once per snapshot: hundreds of rows are serialised ten times a second."""

    def __init__(self):
        self.first_token = settings.TRIAGE_FIRST_TOKEN_TARGETS_S
        self.acknowledge = settings.TRIAGE_ACKNOWLEDGE_TARGETS_S

    def first_token_target(self, urgency):
        return None if urgency is None else self.first_token[urgency]


def targets_view():
    """The targets every page measures waits against (settings), for the scripts."""
    return {"first_token_s": list(settings.TRIAGE_FIRST_TOKEN_TARGETS_S),
            "acknowledge_s": list(settings.TRIAGE_ACKNOWLEDGE_TARGETS_S), "near_share": targets.NEAR_SHARE}


def serialize_request(row, position, now, limits, text_chars=BOARD_TEXT_CHARS):
    """`row` holds BOARD_FIELDS as plain values: the board reads hundreds of rows ten times a second,
    and `.values()` costs a fraction of building model instances."""
    waited_until = row["first_token_at"] or now
    urgency = row["urgency"]
    target = limits.first_token_target(urgency)
    waited = (waited_until - row["created_at"]).total_seconds()
    return {
        "id": row["id"],
        "text": row["text"][:text_chars],
        "location": row["location"],
        "status": row["status"],
        "status_label": STATUS_LABELS.get(row["status"], row["status"]),
        "urgency": urgency,
        "urgency_label": URGENCY_LABELS.get(urgency, "") if urgency is not None else "",
        "needs_review": row["needs_review"],
        "rule_reason": row["rule_reason"],
        "card_titles": card_titles(row["cards"]),
        "answer_withdrawn": row["answer_withdrawn"],
        "predicted_output_tokens": row["predicted_output_tokens"],
        "generated_tokens": row["generated_tokens"],
        "queue_position": position,
        "worker": row["claimed_by"],
        "created_at": row["created_at"].isoformat(),
        "created_ts": _ts(row["created_at"]),
        "first_token_ts": _ts(row["first_token_at"]),
        "finished_ts": _ts(row["finished_at"]),
        "waiting_seconds": round(waited, 1),
        "first_token_target_s": target,
        "target_state": targets.state(waited, target),
        "alert": alert_view(row, limits.acknowledge),
    }


def card_titles(references):
    """The titles of the protocol cards a request was shown, as stored with it."""
    return [str(ref.get("title", "")) for ref in references if isinstance(ref, dict)] \
        if isinstance(references, list) else []


def board_order_key(positions):
    def key(row):
        position = positions.get(row["id"])
        urgency = NUM_LEVELS if row["urgency"] is None else row["urgency"]  # unclassified after every level
        return (position is None, position or 0, urgency, row["created_at"], row["id"])

    return key


def board_snapshot():
    now = timezone.now()
    heartbeats = recent_heartbeats(now)
    positions, heartbeat = queue_positions(heartbeats, now)
    open_requests = list(board_rows(MedicalRequest.objects.filter(status__in=OPEN_STATUSES)))
    finished = list(
        board_rows(MedicalRequest.objects.filter(status__in=(Status.DONE, Status.FAILED)))
        .order_by("-finished_at", "-id")[:RECENTLY_FINISHED]
    )
    pending_alert_ids = list(MedicalRequest.objects.filter(
        alerted_at__gte=now - timezone.timedelta(seconds=ALERT_WINDOW_SECONDS), urgency__in=alerts.alert_levels(),
        acknowledgement__isnull=True).order_by("urgency", "alerted_at", "id").values_list("id", flat=True))
    open_requests.sort(key=board_order_key(positions))
    limits = Targets()
    open_rows = [serialize_request(r, positions.get(r["id"]), now, limits) for r in open_requests]
    finished_rows = [serialize_request(r, None, now, limits) for r in finished]
    serialized = {row["id"]: row for row in open_rows + finished_rows}  # an alert's row is usually one of these
    missing = [pk for pk in pending_alert_ids if pk not in serialized]
    if missing:  # finished, and no longer among the most recent
        for row in board_rows(MedicalRequest.objects.filter(pk__in=missing)):
            serialized[row["id"]] = serialize_request(row, None, now, limits)

    return {
        "generated_at": now.isoformat(),
        "generated_ts": _ts(now),
        "open": open_rows,
        "finished": finished_rows,
        # Unacknowledged alerts, most urgent first, then oldest first: the order a dispatcher takes them in.
        "alerts": [serialized[pk] for pk in pending_alert_ids if pk in serialized],
        "targets": targets_view(),
        "worker": {"alive": heartbeat is not None and _alive(heartbeat, now),
                   "stats": heartbeat.stats if heartbeat else {},
                   "state": _state(heartbeat, now) if heartbeat else "silent",
                   "last_seen_ts": _ts(heartbeat.updated_at) if heartbeat else None},
        "workers": workers_view(heartbeats, now),
    }


def timeline(medical_request):
    return [
        {"key": key, "label": label, "ts": _ts(moment), "at": moment.isoformat() if moment else None}
        for key, label, moment in (
            ("received", "Received", medical_request.created_at),
            ("classified", "Classified", medical_request.classified_at),
            ("queued", "Queued", medical_request.queued_at),
            ("first_token", "First token", medical_request.first_token_at),
            ("finished", "Failed" if medical_request.status == Status.FAILED else "Done",
             medical_request.finished_at),
        )
    ]


def classifier_view(detail):
    """What the classifier said, in a shape templates and scripts can show without knowing its version.

    `reasoning` is its explanation, `probabilities` one (level, label, probability) per urgency
    class when it reports them, `facts` every other scalar it stored.
    """
    detail = detail if isinstance(detail, dict) else {}
    reasoning = detail.get("reasoning") or detail.get("explanation") or ""
    probabilities = []
    raw = detail.get("probabilities")
    if isinstance(raw, dict):
        raw = [raw.get(str(level), raw.get(level)) for level in LEVELS]
    if isinstance(raw, list):
        for level, value in enumerate(raw):
            if isinstance(value, (int, float)) and level in URGENCY_LABELS:
                probabilities.append({"level": level, "label": URGENCY_LABELS[level], "probability": float(value)})
    facts = []
    for key, value in detail.items():
        if key in ("reasoning", "explanation", "probabilities"):
            continue
        if isinstance(value, (dict, list)):
            value = ", ".join(str(v) for v in value) if isinstance(value, list) else \
                ", ".join(f"{k}={v}" for k, v in value.items())
        facts.append({"key": str(key).replace("_", " "), "value": "" if value is None else str(value)})
    return {"reasoning": str(reasoning), "probabilities": probabilities, "facts": facts}


def request_snapshot(request_id):
    medical_request = MedicalRequest.objects.filter(pk=request_id).first()
    if medical_request is None:
        return None
    positions, _ = queue_positions()
    position = positions.get(medical_request.pk) if medical_request.is_open else None
    data = serialize_request(board_values(medical_request), position, timezone.now(), Targets(), text_chars=None)
    data["answer"] = medical_request.answer
    data["cards"] = card_views(medical_request.cards, medical_request.card_texts)
    data["error"] = medical_request.error
    data["timeline"] = timeline(medical_request)
    data["classifier_name"] = medical_request.classifier_name
    data["classifier"] = classifier_view(medical_request.classifier_detail)
    data["model_urgency"] = medical_request.model_urgency
    data["rule_urgency"] = medical_request.rule_urgency
    return data


def _still_waiting_past_target(now):
    """Open requests with no first token yet whose wait is already past their target: misses to count now,
    not only once they are answered."""
    past_target = Q()  # one query: a condition per level, OR-ed
    for level, target in enumerate(settings.TRIAGE_FIRST_TOKEN_TARGETS_S):
        past_target |= Q(urgency=level, created_at__lt=now - timezone.timedelta(seconds=target))
    overdue = MedicalRequest.objects.filter(
        past_target, status__in=OPEN_STATUSES, first_token_at__isnull=True,
        created_at__gte=now - timezone.timedelta(seconds=CHART_WINDOW_SECONDS))
    return [(level, (now - created).total_seconds()) for level, created in overdue.values_list("urgency", "created_at")]


# --- charts --------------------------------------------------------------------------------------

def _mean(values):
    return round(sum(values) / len(values), 2) if values else None


def charts_snapshot(now=None):
    """The last hour, per urgency class: waiting time in the scheduler's queue and time to first
    token (per-minute means), queue length (sampled every 30 s), and the worker's tokens/s.

    Times are epoch seconds; series are keyed by urgency class ("0".."4").
    """
    now = now or timezone.now()
    start = now - timezone.timedelta(seconds=CHART_WINDOW_SECONDS)
    start_ts, now_ts = start.timestamp(), now.timestamp()

    # Waiting time (queued -> first token) and time to first token (arrival -> first token).
    waiting = defaultdict(lambda: defaultdict(list))
    ttft = defaultdict(lambda: defaultdict(list))
    first_token_waits = []  # (level, seconds) for target attainment
    rows = MedicalRequest.objects.filter(first_token_at__gte=start, urgency__isnull=False).values_list(
        "urgency", "created_at", "queued_at", "first_token_at"
    )
    for urgency, created, queued, first in rows.iterator(chunk_size=2000):
        bucket = int(first.timestamp() // CHART_BUCKET_SECONDS) * CHART_BUCKET_SECONDS
        ttft[urgency][bucket].append((first - created).total_seconds())
        first_token_waits.append((urgency, (first - created).total_seconds()))
        if queued is not None:
            waiting[urgency][bucket].append(max((first - queued).total_seconds(), 0.0))
    first_token_waits.extend(_still_waiting_past_target(now))

    acknowledge = defaultdict(lambda: defaultdict(list))
    for urgency, at, seconds in AlertAcknowledgement.objects.filter(acknowledged_at__gte=start).values_list(
        "urgency", "acknowledged_at", "seconds_to_acknowledge"
    ).iterator(chunk_size=2000):
        acknowledge[urgency][int(at.timestamp() // CHART_BUCKET_SECONDS) * CHART_BUCKET_SECONDS].append(seconds)

    def series(per_class):
        out = {}
        for level in LEVELS:
            buckets = per_class.get(level, {})
            xs = sorted(buckets)
            out[str(level)] = {"x": [x + CHART_BUCKET_SECONDS / 2 for x in xs],
                               "y": [_mean(buckets[x]) for x in xs],
                               "n": [len(buckets[x]) for x in xs]}
        return out

    # Queue length per class: queued from queued_at until its first token (or its end if it never
    # started). Requests requeued after a worker restart count from their original queued_at.
    samples = [start_ts + i * QUEUE_SAMPLE_SECONDS for i in range(CHART_WINDOW_SECONDS // QUEUE_SAMPLE_SECONDS)]
    samples.append(now_ts)
    in_window = MedicalRequest.objects.filter(queued_at__isnull=False, queued_at__lte=now, urgency__isnull=False).filter(
        Q(first_token_at__isnull=True) | Q(first_token_at__gte=start)
    ).filter(Q(finished_at__isnull=True) | Q(finished_at__gte=start)).values_list(
        "urgency", "queued_at", "first_token_at", "finished_at"
    )
    starts, ends = defaultdict(list), defaultdict(list)
    for urgency, queued, first, finished in in_window.iterator(chunk_size=2000):
        end = first or finished
        starts[urgency].append(queued.timestamp())
        ends[urgency].append(end.timestamp() if end else float("inf"))
    queue = {}
    for level in LEVELS:
        s, e = sorted(starts.get(level, [])), sorted(ends.get(level, []))
        # queued at or before t, and not yet left at t
        queue[str(level)] = [bisect.bisect_right(s, t) - bisect.bisect_right(e, t) for t in samples]

    # Worker throughput.
    tokens = defaultdict(list)
    for recorded, rate in WorkerSample.objects.filter(recorded_at__gte=start).values_list(
        "recorded_at", "tokens_per_second"
    ).iterator(chunk_size=2000):
        tokens[int(recorded.timestamp() // TOKENS_BUCKET_SECONDS) * TOKENS_BUCKET_SECONDS].append(rate)
    token_x = sorted(tokens)

    return {
        "generated_ts": round(now_ts, 3),
        "window_start_ts": round(start_ts, 3),
        "waiting": series(waiting),
        "ttft": series(ttft),
        "acknowledge": series(acknowledge),
        "attainment": targets.attainment(first_token_waits, settings.TRIAGE_FIRST_TOKEN_TARGETS_S),
        "targets": targets_view(),
        "queue": {"x": [round(t, 3) for t in samples], "by_class": queue},
        "tokens": {"x": [x + TOKENS_BUCKET_SECONDS / 2 for x in token_x], "y": [_mean(tokens[x]) for x in token_x]},
    }
