"""Generate a spec into a throw-away package and import it (shared by the generator tests)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from daqwire.codegen.render import render_all, write

REPO = Path(__file__).resolve().parents[1]
TEST_SPECS = Path(__file__).resolve().parent / "specs"


def generate_package(specs_dir: Path, root: Path, package: str) -> Path:
    """Render every spec in ``specs_dir`` into ``root/package`` (a fresh package)."""
    out = root / package
    out.mkdir(parents=True, exist_ok=True)
    (out / "__init__.py").write_text('"""Generated for a test."""\n')
    write(render_all(specs_dir), out)
    return out


def import_generated(root: Path, package: str, *modules: str) -> list[ModuleType]:
    """Import ``package.<module>`` for each module from ``root``, fresh (after a re-render)."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        return [importlib.import_module(f"{package}.{m}") for m in modules]
    finally:
        sys.path.remove(str(root))


def stage_as_generated(stage: Path, modules: Iterable[Path]) -> list[str]:
    """Lay out ``stage`` as the installed ``daqwire`` with ``modules`` added to
    ``daqwire.generated`` (where their strategies import them), for mypy; their module names."""
    (stage / "daqwire" / "generated").mkdir(parents=True)
    for entry in (REPO / "runtime").iterdir():
        if entry.name != "__pycache__":
            os.symlink(entry, stage / "daqwire" / entry.name)
    for entry in (REPO / "generated").iterdir():
        if entry.suffix == ".py" or entry.name == "py.typed":
            os.symlink(entry, stage / "daqwire" / "generated" / entry.name)
    names = []
    for entry in sorted(modules):
        os.symlink(entry, stage / "daqwire" / "generated" / entry.name)
        names.append(f"daqwire.generated.{entry.stem}")
    return names
