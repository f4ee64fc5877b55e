"""A mirror for a loaded classifier, its settings checked before any frame: what ``mirror``,
``rehearse`` and ``serve`` share."""

from __future__ import annotations

from ..compose.answers import node_answers
from ..errors import CnnTreeError
from .detect import FaceDetector, FaceTracker
from .mirror import Mirror


def make_mirror(clf, reference="", runtime: str | None = None, mode: str | None = None, smoothing: float = 0.6,
                detect_width: int = 320, min_face: int = 40, explain: str | None = None,
                coverage: float | None = None, hierarchy=None) -> Mirror:
    """The mirror of ``clf`` (read from ``reference``); ``runtime`` checks the networks' runtime,
    ``coverage`` names faces by the hierarchy's node at that coverage (``hierarchy``: a tree spec,
    "abstain", or the model's own)."""
    if runtime and clf.runtime != runtime:
        raise CnnTreeError(f"--runtime {runtime}: {reference} holds {clf.runtime} networks; make a {runtime} copy "
                           f"with: cnntree export {reference} --format {runtime} --out DIR")
    clf.combiner(mode)  # an unknown mode fails before any frame
    detector = FaceDetector(detect_width=detect_width, min_face=min_face)
    return Mirror(clf, detector, FaceTracker(smoothing=smoothing), mode=mode, explain=explain,
                  answers=node_answers(clf, coverage, hierarchy) if coverage else None)
