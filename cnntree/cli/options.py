"""Argument types and shared options: every number is bounded (the spec's own bounds where the
option overrides a spec field), so no option accepts what the spec would refuse."""

from __future__ import annotations

import argparse
import sys

from ..spec.schema import Num
from ..spec.sections import SEED, TRAIN


def bounded(field: Num):
    """An argparse type for a number the schema field accepts (its range, integer or not)."""

    def parse(text: str):
        try:
            value = float(text) if not field.integer else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if field.integer else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return field.parse(value, "")
        except Exception as error:  # CnnTreeError: the range, in the schema's words
            raise argparse.ArgumentTypeError(str(error).lstrip(": ")) from None

    parse.__name__ = field.describe()
    return parse


def name_of(what: str):
    """An argparse type for a name that becomes part of a file name (a split in a report's folder)."""
    from ..spec.schema import Ident

    def parse(text: str):
        try:
            return Ident().parse(text, "")
        except Exception as error:
            raise argparse.ArgumentTypeError(str(error).lstrip(": ")) from None

    parse.__name__ = what
    return parse


def count(lo: int, hi: int):
    """An argparse type for an integer in [lo, hi]."""
    return bounded(Num(lo=lo, hi=hi, integer=True))


EPOCHS = bounded(TRAIN.fields["epochs"])
WORKERS = bounded(TRAIN.fields["workers"])
SEED_VALUE = bounded(SEED)
JOBS = count(1, 256)
FRACTION = bounded(Num(lo=0, hi=0.99))
SPLIT_NAME = name_of("split name")
COVERAGE = bounded(Num(lo=0.5, hi=0.999))


def add_coverage(p, calibrating: bool = False) -> None:
    """``--coverage`` and ``--hierarchy`` (and ``--abstain`` where answers are read): hierarchical
    answers at the level the model is sure of (``compose.climbing``)."""
    if calibrating:
        p.add_argument("--coverage", type=COVERAGE, action="append", metavar="C", help="calibrate the hierarchical "
                       "answers' threshold for this coverage (0.5-0.999; repeat for several) on --split, instead "
                       "of the probabilities; the flat abstention baseline is calibrated beside it")
    else:
        p.add_argument("--coverage", type=COVERAGE, metavar="C", help="answer the most specific node of the "
                       "hierarchy that holds the true emotion for at least this share of faces (as calibrated by "
                       "cnntree calibrate --coverage)")
        p.add_argument("--abstain", action="store_true", help="with --coverage: the flat baseline, a class or any "
                       "emotion")
    p.add_argument("--hierarchy", metavar="SPEC", help="with --coverage: the tree spec whose hierarchy a flat "
                   "model answers with (default: a tree's own, or the one calibrated with the model)")


def info(line: str) -> None:
    """Progress for people, on standard error (standard output carries results)."""
    print(line, file=sys.stderr, flush=True)


def data_line(source: str, splits: str, faces: int) -> None:
    """The one line that says which data and split a command on a trained model reads (standard error)."""
    info(f"data: {source}, {splits}: {faces} faces")


def add_data(p, what: str = "the spec's data") -> None:
    """``--data`` and ``--skip-bad``."""
    p.add_argument("--data", metavar="PATH", help=f"a FER2013 .csv/.csv.gz or an image folder instead of {what}")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows or image files and report how many")


def add_parallel(p) -> None:
    """``--jobs`` and ``--ray``."""
    p.add_argument("--jobs", type=JOBS, default=1, metavar="N",
                   help="train up to N networks at once in local processes, sharing the cores (1-256)")
    p.add_argument("--ray", metavar="ADDRESS", help="train the networks as tasks on a Ray cluster (an address, "
                   "'auto', or 'local' to start one here); needs pip install 'cnntree[ray]'")


def add_json(p) -> None:
    """``--json``."""
    p.add_argument("--json", action="store_true", help="print the result as JSON")
