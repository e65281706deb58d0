"""CLI smoke tests: the exact commands from the issue (smaller workloads), tables, JSON and argument errors."""
import json

import pytest

from scheduler import bench, compare, simulate


def test_simulate_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert simulate.main(["--policy", "semantic", "--setting", "A100_4B", "--user-request-gap", "0.01",
                          "--max-concurrent-user-requests", "50", "--seed", "0", "--gap-num", "4",
                          "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "overall" in text and "wait mean" in text and "preemptions" in text
    data = json.loads(out.read_text())
    assert data["params"]["policy"] == "semantic" and data["per_class"]["0"]["waiting"]["count"] > 0


def test_compare_prints_each_policy_with_ratio_to_fcfs(capsys):
    assert compare.main(["--setting", "A100_4B", "--user-request-gap", "0.01", "--max-concurrent-user-requests",
                         "50", "--seeds", "0-1", "--gap-num", "3"]) == 0
    text = capsys.readouterr().out
    for name in ("fcfs", "sjf", "pjf", "semantic", "semantic+aging", "x    1.000", "target >= 47%"):
        assert name in text


def test_bench_quick_runs(capsys):
    assert bench.main(["--quick"]) == 0
    assert "simulated requests/s" in capsys.readouterr().out


@pytest.mark.parametrize("module, argv, message", [
    (simulate, ["--user-request-gap", "-1"], "must be >= 0"),
    (simulate, ["--setting", "TPU"], "invalid choice"),
    (simulate, ["--priority-error-rate", "2"], "must be <= 1"),
    (simulate, ["--length-error-rate", "abc"], "expected a number"),
    (simulate, ["--policy", "random"], "invalid choice"),
    (compare, ["--seeds", "a-b"], "seeds must look like"),
    (compare, ["--aging"], "--aging is implied"),
])
def test_bad_arguments_exit_with_clear_message(capsys, module, argv, message):
    with pytest.raises(SystemExit) as exc:
        module.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_simulate_reports_malformed_trace(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    path.write_text("{oops\n")
    with pytest.raises(SystemExit):
        simulate.main(["--trace", str(path)])
    assert "t.jsonl:1" in capsys.readouterr().err
