"""The documentation holds: the README's commands run on the bundled data as printed, its links and
anchors resolve, and no project file speaks of how the project was developed."""

import re
import subprocess
from pathlib import Path

import pytest

from .helpers import README, ROOT, readme_commands, runs_on_bundled_data

DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "CHANGELOG.md", ROOT / "examples" / "README.md"]


def test_the_readme_is_short_and_its_commands_are_tested():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    commands = [c for c, _ in readme_commands(text)]
    assert sum(map(runs_on_bundled_data, commands)) >= 12
    assert "cnntree train trees/moravcik.json" in commands and "cnntree train trees/single_vgg.json" in commands


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_anchors_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target}"
        if anchor and file.suffix == ".md":
            headings = re.findall(r"(?m)^#+ (.+)$", re.sub(r"```.*?```", "", file.read_text(), flags=re.S))
            assert anchor in {slug(h) for h in headings}, f"{page.name}: {target}"


def test_slug_matches_githubs_rule():
    assert slug("Transfer to a CK+-like folder") == "transfer-to-a-ck-like-folder"
    assert slug("`small` continued to 36 epochs; a snapshot ensemble and a refit") == \
        "small-continued-to-36-epochs-a-snapshot-ensemble-and-a-refit"


# Built from parts so that this file does not match itself.
PROCESS_WORDS = re.compile("|".join([
    r"\bsessions? (\d|of work)", r"\b(this|last|next|previous|a later) session\b", r"\bsession-\d",
    r"\bissues? #?\d", r"\bticket", r"\bround (one|two|three|four|five|\d)\b",
    r"(^|[\s\"'`(=])/" + "work/", r"\.\./" + "shared", "/" + r"home/\w", r"lent for this",
]), re.I)


def project_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_no_file_speaks_of_how_the_project_was_developed():
    """Numbered work logs, rounds, ticket numbers and a machine's paths belong nowhere in the
    project; its history is CHANGELOG.md, by release."""
    found = []
    for path in project_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if PROCESS_WORDS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)


def test_the_process_words_test_can_fail():
    for line in ("measured in session 8", "since this session", "(issue 16)", "hostile, round three",
                 "data at " + "/" + "work/shared/x.csv", "--data ../" + "shared/data/fer2013.csv.gz"):
        assert PROCESS_WORDS.search(line), line
    for line in ("an onnxruntime.InferenceSession", "scope='session'", "--rounds 2", "start_new_session=True"):
        assert not PROCESS_WORDS.search(line), line
