"""The spec family: the JSON schema and field tables, parsing, the hierarchy graph, overrides and
text views. ``load_spec`` is the way in."""

from .parse import NodeSpec, Spec, load_spec, parse_spec, trains_first, with_overrides
from .sections import FER2013_CLASSES, SECTIONS
from .text import summarize, text_tree

__all__ = ["FER2013_CLASSES", "SECTIONS", "NodeSpec", "Spec", "load_spec", "parse_spec", "summarize", "text_tree",
           "trains_first", "with_overrides"]
