"""The daqwire generator: load -> validate -> model -> render (Jinja2).

``load_spec(path)`` returns the validated model of one spec or raises ``SpecError``;
``python -m daqwire.codegen`` (or ``daqwire generate``) regenerates ``daqwire.generated``.
"""

from daqwire.codegen.model import Spec, load_spec
from daqwire.codegen.render import GeneratedFile, check, render_all, render_spec, write
from daqwire.codegen.version import GENERATOR_VERSION

__all__ = [
    "GENERATOR_VERSION",
    "GeneratedFile",
    "Spec",
    "check",
    "load_spec",
    "render_all",
    "render_spec",
    "write",
]
