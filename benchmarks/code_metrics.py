"""Size and shape of the two packages: lines, annotation coverage, check helpers, private cross-module imports.

    python benchmarks/code_metrics.py            # this checkout
    python benchmarks/code_metrics.py --root DIR # another checkout (e.g. a git worktree of an older commit)

Counts, per package: lines of ``*.py`` (``wc -l``), functions and the share of their parameters (other than
``self``/``cls``) that carry an annotation, the share of public functions with a return annotation, the number
of ``check_*``/``_check_*`` helpers, every ``from .x import _private`` across modules (there should be none), and
the exported API (the functions in ``__all__`` of the package and of its exported submodules, and the public
methods of its exported classes) with every parameter and the return annotated (all of it should be; the ones
that are not are listed). The last needs the packages importable (it imports them).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import sys
from pathlib import Path


def package_metrics(root: Path, package: str) -> dict:
    lines = params = annotated = public = returns = checks = 0
    private_imports = []
    for path in sorted((root / package).rglob("*.py")):
        text = path.read_text()
        lines += text.count("\n")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name.lstrip("_").startswith("check_"):
                    checks += 1
                args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                args += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
                args = [a for a in args if a.arg not in ("self", "cls")]
                params += len(args)
                annotated += sum(a.annotation is not None for a in args)
                if not node.name.startswith("_") or node.name == "__init__":
                    public += 1
                    returns += node.returns is not None or node.name == "__init__"
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private_imports.append(f"{path.relative_to(root)}: from {node.module} import {alias.name}")
    return dict(lines=lines, params=params, annotated=annotated, public=public, returns=returns, checks=checks,
                private_imports=private_imports)


def exported_annotations(package: str) -> tuple[int, list[str]]:
    """``(number of exported callables, the ones missing a parameter or return annotation)``."""
    mod = importlib.import_module(package)
    seen: list[str] = []
    missing: list[str] = []

    def check(fn: object, name: str) -> None:
        if not getattr(fn, "__module__", "").startswith(package):
            return  # re-exported from elsewhere (e.g. aif's objects in aif_deep)
        sig = inspect.signature(fn)  # type: ignore[arg-type]
        seen.append(name)
        bare = [p for n, p in sig.parameters.items() if n not in ("self", "cls") and p.annotation is p.empty]
        if bare or (sig.return_annotation is sig.empty and not name.endswith("__init__")):
            missing.append(f"{name}({', '.join(p.name for p in bare)})")

    def visit(obj: object, name: str) -> None:
        if inspect.isclass(obj):
            for m, f in vars(obj).items():
                f = f.__func__ if isinstance(f, (classmethod, staticmethod)) else f
                if inspect.isfunction(f) and (not m.startswith("_") or m == "__init__"):
                    check(f, f"{name}.{m}")
        elif inspect.isfunction(obj):
            check(obj, name)
        elif inspect.ismodule(obj):
            for m in getattr(obj, "__all__", []):
                if not inspect.ismodule(getattr(obj, m)):
                    visit(getattr(obj, m), f"{name}.{m}")

    for n in getattr(mod, "__all__", []):
        visit(getattr(mod, n), n)
    return len(seen), missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    sys.path.insert(0, str(args.root))
    total = 0
    for package in ("aif", "aif_deep"):
        m = package_metrics(args.root, package)
        total += m["lines"]
        n, missing = exported_annotations(package)
        print(f"{package:9s} {m['lines']:6d} lines | parameters annotated {m['annotated']}/{m['params']} "
              f"({100 * m['annotated'] / max(m['params'], 1):.0f}%) | public functions with a return annotation "
              f"{m['returns']}/{m['public']} | check helpers {m['checks']} | private cross-module imports "
              f"{len(m['private_imports'])} | exported callables fully annotated {n - len(missing)}/{n}")
        for line in m["private_imports"]:
            print("   ", line)
        if missing:
            print("    not fully annotated:", ", ".join(missing))
    print(f"total     {total:6d} lines")


if __name__ == "__main__":
    main()
