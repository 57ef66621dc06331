"""The import graph: one import root, layers that only point down, no cycles.

Layers, lowest first (docs/architecture.md):

0. core      ``egis.toolkit``  (contracts, io, runtime options, plugin/adapter interfaces
             and their registries, engine, bundle, tester)
1. plugins   ``egis.plugins``  (variability model implementations)
2. method    ``egis.*``        (synthesis, compaction, detector, evaluation, ...)
3. top       ``egis.cli``, ``egis.models``  (commands and reference models)

A module may import its own layer and the ones below; the top layer's reference models must
not import the commands. Every import counts, including the lazy ones inside functions, so a
deferred import cannot hide a layer violation.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"toolkit": "egis.toolkit", "plugins": "egis.plugins", "models": "egis.models",
           "cli": "egis.cli", "egis": "egis"}
OLD_ROOTS = ("toolkit", "plugins", "models", "cli")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([FOLDERS[parts[0]], *parts[1:]]).replace("egis.egis", "egis")


def _modules() -> dict[str, Path]:
    out = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement of the file, resolved to names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node.lineno))
    return found


def layer(module: str) -> int:
    if module == "egis.toolkit" or module.startswith("egis.toolkit."):
        return 0
    if module == "egis.plugins" or module.startswith("egis.plugins."):
        return 1
    if module.startswith(("egis.cli", "egis.models")):
        return 3
    return 2


MODULES = _modules()


def _edges() -> list[tuple[str, str, int]]:
    edges = []
    for name, path in MODULES.items():
        for target, line in _imports(name, path):
            if target == "egis" or target.startswith("egis."):
                # `from egis.x import y` may name a submodule y: resolve to the deepest module
                resolved = target
                edges.append((name, resolved, line))
    return edges


def test_no_code_imports_the_old_top_level_names():
    bad = [f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
           for name, path in MODULES.items() for target, line in _imports(name, path)
           if target.split(".")[0] in OLD_ROOTS]
    assert not bad, "\n".join(bad)


def test_layers_only_point_down():
    bad = []
    for source, target, line in _edges():
        if layer(target) > layer(source):
            bad.append(f"{MODULES[source].relative_to(ROOT)}:{line}: {source} (layer {layer(source)}) "
                       f"imports {target} (layer {layer(target)})")
        if source.startswith("egis.models") and target.startswith("egis.cli"):
            bad.append(f"{MODULES[source].relative_to(ROOT)}:{line}: a reference model imports the CLI")
    assert not bad, "\n".join(bad)


def test_no_import_cycles_between_modules():
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for source, target, _line in _edges():
        # an edge to a package's name means its __init__; an edge to a name inside a module
        # (`from egis.toolkit.io import write_json`) is an edge to that module
        while target not in MODULES and "." in target:
            target = target.rpartition(".")[0]
        if target in MODULES and target != source and not source.startswith(target + "."):
            graph[source].add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_layer_rules_catch_a_violation(tmp_path):
    """The checker itself: an upward import in a core module is reported."""
    assert layer("egis.toolkit.io") < layer("egis.plugins.generic") < layer("egis.compaction") < layer("egis.cli.main")
    fake = tmp_path / "bad.py"
    fake.write_text("def f():\n    from egis.compaction import compact\n")
    edges = [t for t, _ in _imports("egis.toolkit.bad", fake)]
    assert edges == ["egis.compaction"] and layer(edges[0]) > layer("egis.toolkit.bad")


def test_pyproject_lists_every_package_folder_under_one_root():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert listed == on_disk, f"pyproject packages differ from the tree: {sorted(listed ^ on_disk)}"
    assert all(p == "egis" or p.startswith("egis.") for p in listed)
    for folder, package in FOLDERS.items():
        assert config["package-dir"][package] == folder


@pytest.mark.parametrize("module", ["egis.toolkit.tester", "egis.cli.cmd_test", "egis.synthesis.sid"])
def test_light_paths_stay_light(module):
    """The tester path needs onnx, onnxruntime and numpy only; reading an SID needs no torch."""
    code = (f"import sys, {module}\n"
            "heavy = ('torch', 'sklearn', 'skl2onnx', 'egis.plugins', 'egis.synthesis.training')\n"
            "print(','.join(m for m in heavy if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    allowed = {"sklearn"} if module == "egis.synthesis.sid" else set()
    assert set(filter(None, result.stdout.strip().split(","))) <= allowed
