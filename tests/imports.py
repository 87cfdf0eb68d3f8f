"""The project's own import graph, read from the source (ast): for the layering test and the
test that each DVC stage depends on exactly the code it runs."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "records", "simulator", "features", "models", "retention", "scoring",
            "pipeline")


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Modules `path` imports (absolute names; `from a import b` gives a.b if that is a module,
    else a). With top_level_only, imports inside functions are skipped."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if module_file(f"{node.module}.{alias.name}") is not None}
    return found


def first_party(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def closure(module: str, top_level_only: bool = False) -> set[Path]:
    """Files of the project that `module` runs (its packages' __init__ included); with
    top_level_only, the imports inside `module`'s own functions are left out (the CLI's commands
    import their stage lazily)."""
    todo, seen = [module], set()
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name in seen or not first_party(name):
            continue
        seen.add(name)
        parts = name.split(".")
        for i in range(1, len(parts)):  # parent packages run their __init__ first
            todo.append(".".join(parts[:i]))
        path = module_file(name)
        if path is None:
            continue
        files.add(path)
        todo.extend(imports(path, top_level_only=top_level_only and name == module))
    return files
