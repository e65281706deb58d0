"""Workload generation (the paper's bursty generator) and trace replay; seeded random.Random only."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass

from .urgency import LEAST_URGENT, MOST_URGENT


@dataclass
class WorkloadRequest:
    request_id: int
    arrival_time: float
    urgency: int                 # true urgency (metrics are reported by this)
    prompt_tokens: int
    output_tokens: int           # true output length (EOS)
    predicted_urgency: int       # what the classifier says (the scheduler sees this)
    predicted_output_tokens: int


@dataclass
class WorkloadSpec:
    user_request_gap: float = 1.0
    max_concurrent_user_requests: int = 5
    gap_num: int = 20
    max_prompt_length: int = 500
    max_output_length: int = 500
    priority_error_rate: float = 0.0
    priority_error_distance: int = 1
    length_error_rate: float = 0.0
    length_error_distance: float = 0.5
    seed: int = 0
    # counts[true][predicted] as `manage.py evaluate_classifier --json` writes it: when set, each request's
    # predicted urgency is drawn from its true urgency's row instead of priority_error_rate/distance
    confusion: tuple | None = None


def generate_workload(spec: WorkloadSpec) -> list[WorkloadRequest]:
    """gap_num arrival instants user_request_gap apart, each with randint(0, max_concurrent) requests;
    urgency uniform over the levels, prompt and output lengths uniform 1..max."""
    rng = random.Random(spec.seed)
    counts = [rng.randint(0, spec.max_concurrent_user_requests) for _ in range(spec.gap_num)]
    requests = []
    for gap_index, count in enumerate(counts):
        arrival = gap_index * spec.user_request_gap
        for _ in range(count):
            urgency = rng.randint(MOST_URGENT, LEAST_URGENT)
            prompt = rng.randint(1, spec.max_prompt_length)
            output = rng.randint(1, spec.max_output_length)
            requests.append(WorkloadRequest(len(requests), arrival, urgency, prompt, output, urgency, output))
    apply_prediction_errors(requests, spec, rng)
    return requests


def apply_prediction_errors(requests: list[WorkloadRequest], spec: WorkloadSpec, rng: random.Random) -> None:
    """Urgency error: with probability rate, shift by +/-distance classes (random sign, kept on the scale).
    Length error: with probability rate, scale by (1 +/- distance), at least 1 token."""
    for req in requests:
        if spec.confusion is not None:
            req.predicted_urgency = draw_from_confusion(spec.confusion, req.urgency, rng)
        elif spec.priority_error_rate > 0 and rng.random() < spec.priority_error_rate:
            sign = rng.choice((-1, 1))
            shifted = req.urgency + sign * spec.priority_error_distance
            if not MOST_URGENT <= shifted <= LEAST_URGENT:
                shifted = req.urgency - sign * spec.priority_error_distance
            req.predicted_urgency = min(LEAST_URGENT, max(MOST_URGENT, shifted))
        if spec.length_error_rate > 0 and rng.random() < spec.length_error_rate:
            sign = rng.choice((-1, 1))
            req.predicted_output_tokens = max(1, round(req.output_tokens * (1 + sign * spec.length_error_distance)))


def draw_from_confusion(confusion, urgency: int, rng: random.Random) -> int:
    """A predicted level for a request of true `urgency`, in proportion to the classifier's measured counts
    (a row without counts predicts exactly)."""
    row = confusion[urgency]
    total = sum(row)
    if not total:
        return urgency
    return rng.choices(range(len(row)), weights=row)[0]


def load_confusion(path: str) -> tuple:
    """The confusion matrix from `evaluate_classifier --json` output (its "confusion") or a bare 5x5 list of
    counts. Raises ValueError naming the file on anything else."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg})") from None
    matrix = data.get("confusion") if isinstance(data, dict) else data
    return check_confusion(matrix, path)


def check_confusion(matrix, where: str) -> tuple:
    levels = LEAST_URGENT - MOST_URGENT + 1
    if not isinstance(matrix, (list, tuple)) or len(matrix) != levels or any(
            not isinstance(row, (list, tuple)) or len(row) != levels
            or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in row) for row in matrix):
        raise ValueError(f"{where}: the confusion matrix must be {levels} rows of {levels} non-negative whole "
                         "counts (rows = true level, columns = predicted), as evaluate_classifier --json writes it")
    return tuple(tuple(row) for row in matrix)


TRACE_KEYS = ("arrival_time", "urgency", "prompt_tokens", "output_tokens")


def load_trace(path: str) -> list[WorkloadRequest]:
    """JSON lines: arrival_time, urgency, prompt_tokens, output_tokens[, predicted_urgency, predicted_output_tokens].
    Raises ValueError naming the file and line number of the first bad line."""
    requests = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            requests.append(parse_trace_line(line, len(requests), f"{path}:{line_no}"))
    requests.sort(key=lambda r: (r.arrival_time, r.request_id))
    return requests


def parse_trace_line(line: str, request_id: int, where: str) -> WorkloadRequest:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object")
    missing = [k for k in TRACE_KEYS if k not in record]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
    arrival = record["arrival_time"]
    if not isinstance(arrival, (int, float)) or isinstance(arrival, bool) or arrival < 0 or arrival != arrival:
        raise ValueError(f"{where}: arrival_time must be a non-negative number, got {arrival!r}")
    values = {}
    for key, low, high in (("urgency", MOST_URGENT, LEAST_URGENT), ("prompt_tokens", 1, None),
                           ("output_tokens", 1, None), ("predicted_urgency", MOST_URGENT, LEAST_URGENT),
                           ("predicted_output_tokens", 1, None)):
        value = record.get(key, record.get(key.replace("predicted_", ""), None))
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 250.0 from tools that write every number as a float (the paper's predictor does)
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise ValueError(f"{where}: {key} must be an integer {bound}, got {value!r}")
        values[key] = value
    return WorkloadRequest(request_id, float(arrival), values["urgency"], values["prompt_tokens"],
                           values["output_tokens"], values["predicted_urgency"], values["predicted_output_tokens"])


def write_trace(requests: list[WorkloadRequest], path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for r in requests:
            handle.write(json.dumps({"arrival_time": r.arrival_time, "urgency": r.urgency,
                                     "prompt_tokens": r.prompt_tokens, "output_tokens": r.output_tokens,
                                     "predicted_urgency": r.predicted_urgency,
                                     "predicted_output_tokens": r.predicted_output_tokens}) + "\n")
