"""The documentation holds: the README's commands run on the bundled data as printed, its links and
anchors resolve, and no project file speaks of how the project was developed."""

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from .helpers import ROOT, run_cli

README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "CHANGELOG.md", ROOT / "examples" / "README.md"]


def readme_commands(text: str) -> list[tuple[str, list[str]]]:
    """Each ``$ cnntree ...`` line of the README's console blocks, its comment removed, with the
    output lines printed under it."""
    commands = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:].split("  #")[0].strip(), []))
            elif commands:
                commands[-1][1].append(line)
    return commands


def runs_on_bundled_data(command: str) -> bool:
    """Commands that need the full FER2013 (``path/to/``, ``--data fer2013.csv.gz``) or a camera, and
    ``serve`` (a server runs until stopped: tests/test_serve.py drives it in a browser), are not run
    here; every other README command is."""
    return command.startswith("cnntree ") and "fer2013.csv" not in command and "path/to/" not in command \
        and "webcam" not in command and not command.startswith("cnntree serve")


@pytest.mark.slow
def test_every_readme_command_runs_as_printed(sample):
    """The README's commands, in order, in a fresh folder with the repository's specs and examples,
    a face photo and a group photo. Trainings get ``--quick`` (their full length is what the README's
    times measure); every other command runs exactly as printed. A command shown with an error
    must fail with exit status 2 and that line; one shown with its output must print it."""
    for folder in ("trees", "examples"):
        shutil.copytree(ROOT / folder, folder)
    happy = np.flatnonzero(sample.labels == sample.classes.index("happy"))
    cv2.imwrite("face.png", sample.images[happy[0]])
    from cnntree.live.scenes import background, grid_boxes, render

    cv2.imwrite("group.jpg", render(sample.images[happy[:4]], grid_boxes(4), background()))
    commands = [(c, shown) for c, shown in readme_commands(README.read_text()) if runs_on_bundled_data(c)]
    assert len(commands) >= 12, commands
    for command, shown in commands:
        args = command.split()[1:]
        if args[0] == "train":
            args.append("--quick")
        code, out, err = run_cli(*args)
        error = [line for line in shown if line.startswith("cnntree: error:")]
        if error:
            assert code == 2 and err.strip() == error[0], (command, err)
            continue
        assert code == 0, (command, err[-2000:])
        if args[0] in ("validate", "show"):
            assert [line for line in shown if line] == out.splitlines(), command
    assert Path("runs/models/moravcik").is_dir() and Path("runs/models/single_vgg").is_dir()
    assert Path("labelled.jpg").is_file()


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
