"""Rehearsal feedback: did the face show the emotion each line of the script asks for?

A script is a JSON list of segments (or ``{"segments": [...]}``): ``start`` and ``end`` in
seconds, the ``line`` spoken, the ``expected`` emotion. Each segment is scored on the main face's
smoothed probabilities over the frames inside it (see ``examples/rehearsal_script.json``).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CnnTreeError
from ..files import check_output_file, write_text_atomically
from ..log import say
from ..plots import draw_timeline
from ..spec.schema import ListOf, Num, Obj, Text, did_you_mean, fail, load_json
from .mirror import open_source, run_mirror

SEGMENT = Obj({"start": Num(lo=0), "end": Num(lo=0), "line": Text(""), "expected": Text()})
MATCH, WEAK, MISS, NO_FACE = "match", "weak", "miss", "no face"
REPORT_SUFFIXES = (".md", ".html")
WEAK_SCORE = 0.25  # a mean probability this high for the expected emotion is "weak", not "miss"


@dataclass
class Segment:
    """One line of a rehearsal script: when, what is said, which emotion is expected."""

    start: float
    end: float
    line: str
    expected: str


def parse_script(raw, classes, source: str = "<script>") -> list[Segment]:
    """Validated segments; errors name the file and the segment (``segments[2].expected: ...``)."""
    try:
        items = raw["segments"] if isinstance(raw, dict) and set(raw) == {"segments"} else raw
        parsed = ListOf(SEGMENT, min_len=1).parse(items, "segments")
        segments = [Segment(**p) for p in parsed]
        for i, s in enumerate(segments):
            if s.end <= s.start:
                fail(f"segments[{i}]", f"ends ({s.end:g}) before it starts ({s.start:g})")
            if s.expected not in classes:
                fail(f"segments[{i}].expected", f'"{s.expected}" is not a class of this model'
                     f"{did_you_mean(s.expected, classes)}; classes: {', '.join(classes)}")
            if i and s.start < segments[i - 1].end:
                fail(f"segments[{i}]", f"starts at {s.start:g}, before segments[{i - 1}] ends ({segments[i - 1].end:g})")
    except CnnTreeError as error:
        raise CnnTreeError(f"{source}: {error}") from None
    return segments


def load_script(path, classes) -> list[Segment]:
    """A script file's validated segments."""
    return parse_script(load_json(path, "script"), classes, str(path))


def score_segments(segments, times, main, classes) -> list[dict]:
    """Per segment: frames inside, share with a face, dominant emotion, match score and verdict.

    ``main`` is (frames, classes) smoothed probabilities of the main face, NaN where none was seen.
    Dominant = the highest mean probability; score = the expected emotion's mean probability;
    verdict: match (dominant is expected), weak (expected second or score >= 0.25), miss, no face.
    """
    times, main = np.asarray(times, float), np.asarray(main, float).reshape(len(times), len(classes))
    rows = []
    for s in segments:
        inside = (times >= s.start) & (times < s.end)
        seen = inside & ~np.isnan(main).any(axis=1)
        row = {"start": s.start, "end": s.end, "line": s.line, "expected": s.expected, "frames": int(inside.sum()),
               "face_share": float(seen.sum() / inside.sum()) if inside.any() else 0.0}
        if not seen.any():
            rows.append({**row, "dominant": None, "score": None, "verdict": NO_FACE})
            continue
        mean = main[seen].mean(axis=0)
        order = np.argsort(-mean)
        expected = classes.index(s.expected)
        score = float(mean[expected])
        verdict = MATCH if order[0] == expected else WEAK if expected == order[1] or score >= WEAK_SCORE else MISS
        rows.append({**row, "dominant": classes[int(order[0])], "score": score, "verdict": verdict,
                     "mean": {c: float(p) for c, p in zip(classes, mean)}})
    return rows


def report(rows, path, title: str, timeline=None) -> Path:
    """The rehearsal report as Markdown (``.md``) or HTML (``.html``), written atomically."""
    path = Path(path)
    check_report_path(path)
    picture = _relative(Path(timeline).resolve(), path) if timeline else None
    return write_text_atomically(path, report_text(rows, title, path.suffix.lower(), picture))


def report_text(rows, title: str, suffix: str = ".html", picture: str | None = None) -> str:
    """The rehearsal report's text (``suffix`` .md or .html), with the timeline ``picture`` linked:
    what ``cnntree rehearse`` writes and the served page shows and offers."""
    scored = [r["score"] for r in rows if r["score"] is not None]
    overall = f"{np.mean(scored):.2f}" if scored else "-"
    counts = {v: sum(r["verdict"] == v for r in rows) for v in (MATCH, WEAK, MISS, NO_FACE)}
    summary = (f"{len(rows)} segments: {counts[MATCH]} match, {counts[WEAK]} weak, {counts[MISS]} miss, "
               f"{counts[NO_FACE]} without a face; mean match score {overall}")
    header = ["#", "time (s)", "line", "expected", "dominant", "score", "face", "verdict"]
    cells = [[str(i + 1), f"{r['start']:g}-{r['end']:g}", r["line"], r["expected"], r["dominant"] or "-",
              f"{r['score']:.2f}" if r["score"] is not None else "-", f"{r['face_share']:.0%}", r["verdict"]]
             for i, r in enumerate(rows)]
    if suffix == ".html":
        e = html.escape
        table = "".join(f"<tr>{''.join(f'<td>{e(c)}</td>' for c in row)}</tr>" for row in cells)
        image = f'<img src="{e(picture)}" alt="timeline" width="100%">' if picture else ""
        return (f"<!doctype html><meta charset='utf-8'><title>{e(title)}</title>"
                "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;border-bottom:1px solid #ddd}"
                "</style>"
                f"<h1>{e(title)}</h1><p>{e(summary)}</p><table><tr>{''.join(f'<th>{e(h)}</th>' for h in header)}"
                f"</tr>{table}</table>{image}\n")
    lines = [f"# {title}", "", summary, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    if picture:
        lines += ["", f"![timeline]({picture})"]
    return "\n".join(lines) + "\n"


def check_report_path(path) -> None:
    """Refuse a report name that is neither ``.md`` nor ``.html``."""
    if Path(path).suffix.lower() not in REPORT_SUFFIXES:
        raise CnnTreeError(f"--out {path}: the report is written as {' or '.join(REPORT_SUFFIXES)}")


def _relative(target: Path, report_path: Path) -> str:
    return os.path.relpath(target, Path(report_path).resolve().parent)


def rehearse(mirror, script, source, out, timeline=None, max_frames: int | None = None) -> list[dict]:
    """``cnntree rehearse``: the video ``source`` run through ``mirror``, its main face scored
    against the ``script`` file's segments, the report written to ``out`` (``.md`` or ``.html``)
    with the ``timeline`` picture (detected curves over the expected bands). One row per segment."""
    check_report_path(out)
    check_output_file(out, "--out")
    if timeline:
        check_output_file(timeline, "--timeline")
    classes = list(mirror.classifier.spec_.classes)
    segments = load_script(script, classes)
    opened = open_source(source)
    if opened.kind == "image":
        raise CnnTreeError(f"--source {source}: rehearsal needs a video or a camera, not an image")
    run = run_mirror(mirror, opened, max_frames=max_frames, printer=say)
    rows = score_segments(segments, run.times, run.main, classes)
    if timeline:
        draw_timeline(run.times, run.main, classes, timeline, bands=[(s.start, s.end, s.expected) for s in segments],
                      title=f"{Path(source).name}: detected (curves) vs expected (bands)")
    report(rows, out, f"Rehearsal of {Path(script).name} on {Path(source).name}", timeline)
    return rows
