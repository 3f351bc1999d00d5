"""The documentation site stays in step with the code: README commands, API pages per module.

The Sphinx build itself (warnings as errors) is a CI step in ``.ci/run``; these checks are
the fast part, so a new module or a changed README command is caught by pytest too.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _sh_blocks(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^```sh\n(.*?)^```", text, re.M | re.S)]


def _readme_command(marker: str) -> str:
    """The shell block after ``<!-- marker -->`` in the README, as .ci/run reads it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split(f"<!-- {marker} -->\n", 1)[1]
    return _sh_blocks(after)[0]


def _documented_modules() -> set[str]:
    names: set[str] = set()
    for page in (DOCS / "api").rglob("*.rst"):
        text = page.read_text(encoding="utf-8")
        names.update(re.findall(r"^\.\. automodule:: (\S+)$", text, re.M))
    return names


def test_getting_started_starts_with_the_readme_commands() -> None:
    blocks = _sh_blocks((DOCS / "getting-started.md").read_text(encoding="utf-8"))
    assert blocks[:2] == [_readme_command("demo-command"), _readme_command("test-command")]


def test_every_generated_module_has_an_api_page() -> None:
    generated = {
        f"daqwire.generated.{p.stem}"
        for p in (ROOT / "generated").glob("*.py")
        if p.stem != "__init__"
    }
    missing = generated - _documented_modules()
    assert not missing, f"add these to docs/api/generated/: {sorted(missing)}"


def test_every_runtime_package_has_an_api_page() -> None:
    packages = {
        "daqwire" + "".join(f".{part}" for part in p.parent.relative_to(ROOT / "runtime").parts)
        for p in (ROOT / "runtime").rglob("__init__.py")
    }
    missing = packages - _documented_modules()
    assert not missing, f"add these to docs/api/: {sorted(missing)}"


def test_every_guide_is_in_the_site() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctree = {
        line.strip()
        for block in re.findall(r"```\{toctree\}\n(.*?)```", index, re.S)
        for line in block.splitlines()
        if line.strip() and not line.startswith(":")
    }
    guides = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    assert guides <= toctree, f"add to the toctree in docs/index.md: {sorted(guides - toctree)}"
