"""Sphinx configuration of the daqwire documentation site (MyST guides + autodoc API reference).

Build it with warnings as errors, as CI does:
``python -m sphinx -W --keep-going -b html docs build/docs-html``.
"""

from __future__ import annotations

import builtins
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

import daqwire

project = "daqwire"
author = "the daqwire authors"
copyright = "the daqwire authors"
release = daqwire.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# Guides are MyST Markdown pages; the API reference (docs/api/) is reStructuredText, which
# autodoc writes natively. The root page is index.md.
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# `[text](file.md#a-heading)` links in the guides resolve to headings down to level 3.
myst_heading_anchors = 3

# No network at build time: intersphinx stays off, and unresolved Python references are
# plain text rather than warnings.
nitpicky = False

autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
# Signatures stay readable: types are shown in the signature as written.
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# Frozen dataclasses and enums: document the class docstring only.
autoclass_content = "class"

html_theme = "alabaster"
html_title = f"daqwire {release}"
html_theme_options = {
    "description": "Spec-driven wire protocols for instruments, telescopes and DAQ",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "260px",
}
html_static_path: list[str] = []


class BuiltinTypeNames(SphinxPostTransform):
    """Leave builtin type names in signatures (``bytes``, ``int``) as plain text.

    Without intersphinx they have no target, and Sphinx's type-alias fallback would match them
    to same-named attributes instead (``FramerStats.bytes``), warning about ambiguity.
    """

    default_priority = 5  # before the references are resolved (priority 10)

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(pending_xref)):
            target = node.get("reftarget", "")
            if (
                node.get("refdomain") == "py"
                and node.get("reftype") == "class"
                and isinstance(getattr(builtins, target, None), type)
            ):
                node.replace_self(node.children or [nodes.Text(target)])


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_post_transform(BuiltinTypeNames)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
