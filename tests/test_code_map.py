"""The README's code map: every module is listed, and each imports only modules listed below it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "forecast"


def code_map() -> list[str]:
    """Module names in the README's code map, top to bottom."""
    text = (ROOT / "README.md").read_text()
    block = text.split("### Code map", 1)[1].split("```", 2)[1]
    return re.findall(r"^(\w+)\.py\s", block, flags=re.M)


def imports_of(module: str) -> set[str]:
    """The forecast modules `module` imports, at the top or inside functions."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "forecast":
            if node.module == "forecast":
                found |= {alias.name for alias in node.names}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("forecast.")}
    return found & {p.stem for p in PACKAGE.glob("*.py")} - {module}


def test_the_code_map_lists_every_module_once() -> None:
    listed = code_map()
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert sorted(listed) == sorted(modules)


def test_each_module_imports_only_modules_below_it() -> None:
    listed = code_map()
    upward = [
        f"{module} imports {other}"
        for i, module in enumerate(listed)
        for other in sorted(imports_of(module))
        if other not in listed[i + 1 :]
    ]
    assert upward == []


def test_every_module_opens_with_a_line_saying_its_job() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc, f"{path.name} has no docstring"
        first = doc.splitlines()[0]
        assert first.endswith((".", ":")) and len(first) <= 110, f"{path.name}: {first!r}"
