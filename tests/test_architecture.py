"""The layout's rules, checked on the source: which package may import which, and no import cycles of two.

Read with `ast`, nothing is imported: imports inside functions count as much as those at the top."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scheduler", "inference_worker", "triage_site", "benchmarks", "data", "tests")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """Absolute names of the project modules `path` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in PACKAGES}


def _sources(*packages):
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


@pytest.fixture(scope="module")
def graph():
    modules = {_module_name(path): path for path in _sources(*PACKAGES)}
    edges = {}
    for name, path in modules.items():
        # "from x import y" names y, which may be a module of its own or a name inside x.
        edges[name] = {target for target in _imports(path) if target in modules and target != name}
    return edges


def _importers(graph, prefix, target_prefix):
    return sorted((source, target) for source, targets in graph.items() if source.split(".")[0] == prefix
                  for target in targets if target.split(".")[0] == target_prefix)


def test_no_two_modules_import_each_other(graph):
    pairs = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if a in graph.get(b, ())
                    and not (a.startswith(b + ".") or b.startswith(a + "."))})
    assert pairs == []


def test_the_scheduler_knows_nothing_of_django_torch_or_the_other_packages():
    for path in _sources("scheduler"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
                for name in names:
                    assert name.split(".")[0] not in ("django", "torch", "triage_site", "inference_worker",
                                                      "channels", "celery"), (path, name)


def test_the_web_project_reaches_the_worker_only_through_the_embedded_launcher(graph):
    """And the guidance evaluation, whose --generate runs the worker's model as the worker would."""
    assert _importers(graph, "triage_site", "inference_worker") == [
        ("triage_site.guidance.management.commands.evaluate_guidance", "inference_worker.answer_check"),
        ("triage_site.live.management.commands.serve", "inference_worker.embedded")]


def test_the_worker_reaches_django_only_through_its_store(graph):
    assert {source for source, _ in _importers(graph, "inference_worker", "triage_site")} == {"inference_worker.store"}


def test_runtime_packages_and_benchmarks_never_import_tests(graph):
    for prefix in ("scheduler", "inference_worker", "triage_site", "benchmarks", "data"):
        assert _importers(graph, prefix, "tests") == []


def test_runtime_packages_never_import_benchmarks_except_the_traffic_command(graph):
    for prefix in ("scheduler", "inference_worker"):
        assert _importers(graph, prefix, "benchmarks") == []
    assert {source for source, _ in _importers(graph, "triage_site", "benchmarks")} <= {
        "triage_site.intake.management.commands.generate_traffic"}
