"""Splits: FER2013's usage column, random or (grouped) K-fold test splits, the validation carve-out."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import CnnTreeError
from ..spec.schema import did_you_mean
from .faces import FaceData


@dataclass(frozen=True)
class Splits:
    """Index arrays into a :class:`FaceData` for training, validation and each test split."""

    train: np.ndarray
    validation: np.ndarray
    tests: dict[str, np.ndarray]
    train_name: str = "Training"
    validation_source: str = "Training"

    def sizes(self) -> dict[str, int]:
        """Faces per split, validation included."""
        return {self.train_name: len(self.train), "Validation": len(self.validation),
                **{name: len(idx) for name, idx in self.tests.items()}}


def make_splits(data: FaceData, split: dict, validation: dict) -> Splits:
    """Apply a spec's ``data.split`` scheme and its ``data.validation`` carve-out."""
    scheme, train_names = split["scheme"], training_splits(split)
    if scheme == "usage":
        named = _usage_splits(data, split)
    else:
        rng_seed = split["seed"]
        if scheme == "random":
            train, test = stratified_fraction(data.labels, np.arange(len(data)), split["test_fraction"], rng_seed,
                                               f"{data.source}: data.split.test_fraction")
        else:
            train, test = _kfold(data, split)
        named = {"Training": train, "Test": test}
    source = validation["from"]
    if source not in named:
        raise CnnTreeError(f"data.validation.from: \"{source}\" is not a split of this data"
                           f"{did_you_mean(source, named)}; splits: {', '.join(named)}")
    rest, val = stratified_fraction(data.labels, named[source], validation["fraction"], 12345,
                                     "data.validation.fraction")
    named[source] = rest
    tests = {k: v for k, v in named.items() if k not in train_names and len(v)}
    return Splits(train=np.concatenate([named[name] for name in train_names]), validation=val, tests=tests,
                  train_name="+".join(train_names), validation_source=source)


def training_splits(split: dict) -> list[str]:
    """The split names a ``data.split`` scheme trains on: a ``usage`` scheme's one name or several
    merged; ``Training`` (what they carve) for the random and K-fold schemes."""
    if split["scheme"] != "usage":
        return ["Training"]
    return [split["train"]] if isinstance(split["train"], str) else list(split["train"])


def _usage_splits(data: FaceData, split: dict) -> dict[str, np.ndarray]:
    present = sorted(set(data.splits.tolist()) - {""})
    if not present:
        raise CnnTreeError(f"{data.source}: the data has no split column or split folders; "
                           "use data.split.scheme \"random\" or \"kfold\"")
    train_names = training_splits(split)
    for name in set(train_names) & set(split["test"]):
        raise CnnTreeError(f"{data.source}: data.split trains and tests on split \"{name}\"; "
                           "take it out of data.split.test")
    wanted = [*train_names, *split["test"]]
    for name in wanted:
        if name not in present:
            raise CnnTreeError(f"{data.source}: data.split names split \"{name}\", which the data does not have"
                               f"{did_you_mean(name, present)}; splits: {', '.join(present)}")
    named = {name: np.flatnonzero(data.splits == name) for name in wanted}
    for name in train_names:
        if not len(named[name]):
            raise CnnTreeError(f"{data.source}: split \"{name}\" is empty")
    return named


def stratified_fraction(labels, index, fraction, seed, where):
    """Split ``index`` into (rest, slice) with ``fraction`` of every class in the slice."""
    if fraction >= 1.0:
        return index[:0], index
    rng = np.random.default_rng(seed)
    picked = []
    for cls in np.unique(labels[index]):
        members = index[labels[index] == cls]
        n = int(round(fraction * len(members)))
        picked.append(rng.permutation(members)[:n])
    chosen = np.sort(np.concatenate(picked)) if picked else index[:0]
    if len(chosen) == 0 or len(chosen) == len(index):
        raise CnnTreeError(f"{where}: {fraction} of {len(index)} images leaves an empty part")
    return np.setdiff1d(index, chosen), chosen


def _kfold(data: FaceData, split: dict):
    k, fold = split["folds"], split["fold"]
    if fold >= k:
        raise CnnTreeError(f"data.split.fold: {fold} is out of range for {k} folds (0..{k - 1})")
    folds, _ = stratified_folds(data.labels, k, data.names, split["group_regex"], split["seed"], "data.split.folds",
                                data.classes)
    return folds[fold]


def stratified_folds(labels: np.ndarray, k: int, names=None, group_regex: str | None = None, seed: int = 0,
                     where: str = "--folds", classes=None):
    """K stratified (train, test) index pairs and each image's subject; with ``group_regex`` no
    subject is in two folds (scikit-learn's StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if k < 2:
        raise CnnTreeError(f"{where}: {k} folds; cross-validation needs at least 2")
    groups = subject_groups(names, group_regex) if group_regex else None
    if groups is not None and len(set(groups)) < k:
        raise CnnTreeError(f"{where}: {k} folds but only {len(set(groups))} subjects match the group regex")
    counts = np.bincount(labels)
    smallest = int(np.argmin(np.where(counts > 0, counts, counts.max() + 1)))
    if counts[smallest] < k:
        name = f'class "{classes[smallest]}"' if classes is not None else "a class"
        raise CnnTreeError(f"{where}: {k} folds but {name} has only {counts[smallest]} images")
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(labels)), labels)), None
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups)), groups


def subject_groups(names, regex: str) -> np.ndarray:
    """The subject id of each image: the regex's first group (or whole match) on its file name."""
    pattern = safe_regex(regex, "group regex")
    out = []
    for name in names:
        match = pattern.search(os.path.basename(str(name)))
        if not match:
            raise CnnTreeError(f"{name}: group regex {regex!r} does not match this file name")
        out.append(match.group(1) if pattern.groups else match.group(0))
    return np.array(out, dtype=str)


def safe_regex(regex: str, what: str) -> re.Pattern:
    """``regex`` compiled, refused when it could backtrack for minutes: an unbounded repetition that
    contains another repetition or an alternation (``(a+)+``, ``(a|aa)*``) is exponential on
    unlucky file names, and Python's ``re`` has no time limit."""
    try:
        from re import _constants as c
        from re import _parser as parser
    except ImportError:  # Python 3.10
        import sre_constants as c
        import sre_parse as parser

    if len(regex) > 500:
        raise CnnTreeError(f"{what} {regex[:40]!r}...: longer than 500 characters")
    try:
        pattern = re.compile(regex)
        tree = parser.parse(regex)
    except (re.error, RecursionError, OverflowError) as error:
        raise CnnTreeError(f"{what} {regex!r}: invalid ({error})") from None
    repeats = tuple(getattr(c, name) for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(c, name))

    def risky(items, inside_unbounded: bool) -> bool:
        for op, arg in items:
            if op in repeats:
                low, high, body = arg
                unbounded = high == c.MAXREPEAT or high > 100
                if unbounded and inside_unbounded or risky(body, inside_unbounded or unbounded):
                    return True
            elif op == c.BRANCH:
                if inside_unbounded or any(risky(branch, inside_unbounded) for branch in arg[1]):
                    return True
            elif op == c.SUBPATTERN:
                if risky(arg[-1], inside_unbounded):
                    return True
            elif op in (c.ASSERT, c.ASSERT_NOT) and risky(arg[1], inside_unbounded):
                return True
        return False

    if risky(tree, False):
        raise CnnTreeError(f"{what} {regex!r}: a repetition inside a repetition or alternation can take "
                           "exponential time; simplify it (e.g. ^(S\\d+)_)")
    return pattern


def split_prefix(split: str) -> str:
    """``PublicTest`` -> ``public``, ``PrivateTest`` -> ``private``, others lower-cased."""
    return split.lower().removesuffix("test") or split.lower()
