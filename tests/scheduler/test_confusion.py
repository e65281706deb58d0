"""The classifier's measured errors in the simulator: predicted urgencies drawn from a confusion matrix."""
import json
import random

import pytest

from scheduler.compare import run_comparison
from scheduler.simulate import build_parser
from scheduler.simulator import SimulationParams, run_simulation
from scheduler.workload import draw_from_confusion, load_confusion

# rows = true level, columns = predicted (as evaluate_classifier --json writes "confusion")
MATRIX = [[6, 4, 0, 0, 0], [0, 10, 0, 0, 0], [0, 0, 0, 10, 0], [0, 0, 0, 10, 0], [0, 0, 0, 0, 0]]


def test_predictions_follow_the_true_levels_row():
    rng = random.Random(0)
    draws = [draw_from_confusion(MATRIX, 0, rng) for _ in range(5000)]
    assert set(draws) == {0, 1} and 0.37 < draws.count(1) / len(draws) < 0.43
    assert {draw_from_confusion(MATRIX, 2, rng) for _ in range(100)} == {3}
    assert {draw_from_confusion(MATRIX, 4, rng) for _ in range(100)} == {4}  # no counts: exact


def test_the_evaluate_classifier_json_is_read_and_bad_files_are_refused(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"accuracy": 0.8, "confusion": MATRIX}))
    assert load_confusion(str(report))[0] == (6, 4, 0, 0, 0)
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(MATRIX))
    assert load_confusion(str(bare)) == load_confusion(str(report))
    for content in ("[[1, 2]]", json.dumps({"confusion": [[-1] * 5] * 5}), "not json"):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(ValueError, match="bad.json"):
            load_confusion(str(bad))


def test_simulated_requests_carry_predictions_drawn_from_the_matrix():
    result = run_simulation(SimulationParams(user_request_gap=0.5, max_concurrent_user_requests=10, gap_num=20,
                                             confusion=MATRIX))
    level2 = [r for r in result.requests if r["urgency"] == 2]
    assert level2 and all(r["predicted_urgency"] == 3 for r in level2)


def test_compare_reports_level0_waiting_with_measured_errors_beside_exact(tmp_path):
    path = tmp_path / "confusion.json"
    path.write_text(json.dumps({"confusion": MATRIX}))
    args = build_parser().parse_args(["--user-request-gap", "0.05", "--max-concurrent-user-requests", "20",
                                      "--gap-num", "10", "--confusion", str(path)])
    report = run_comparison(args, [0], include_aging=False)
    measured = report["variants"]["semantic"]["pooled"]["0"]["mean_waiting"]
    exact = report["variants"]["semantic exact"]["pooled"]["0"]["mean_waiting"]
    assert measured > exact  # 40% of level 0 predicted as level 1 wait behind the others of class 0
