"""A small declarative validator for the JSON spec.

Each field type parses one JSON value at a JSON path, fills defaults, range-checks numbers and
rejects unknown keys with a "did you mean" hint. ``base`` carries inherited values (a spec's
``defaults``) so a node only states what it overrides.
"""

from __future__ import annotations

import abc
import difflib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

from ..errors import CnnTreeError
from ..files import open_regular

REQUIRED = object()


MAX_JSON_BYTES = 1 << 20  # a spec or script is a few KiB; a larger file is not one
MAX_JSON_DEPTH = 64


def load_json(path, what: str = "file"):
    """A JSON file's value; errors name the file (and line), duplicate keys included.

    Only a regular file of at most 1 MiB is read; a UTF-8 byte-order mark is accepted; NaN,
    Infinity, numbers of thousands of digits and nesting deeper than 64 levels are refused.
    """
    path = Path(path)
    with open_regular(path, f"{what} file", MAX_JSON_BYTES) as f:
        try:
            text = f.read().decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise CnnTreeError(f"{path}: cannot read {what} ({error})") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise CnnTreeError(f"{path}: invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise CnnTreeError(f"{path}: JSON nested too deeply") from None
    except ValueError as error:  # an integer of thousands of digits
        raise CnnTreeError(f"{path}: invalid JSON: {str(error).splitlines()[0]}") from None
    except CnnTreeError as error:
        raise CnnTreeError(f"{path}: {error}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise CnnTreeError(f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _no_constant(name):
    raise CnnTreeError(f"{name} is not a JSON number")


def _depth(value) -> int:
    """Nesting depth without recursion (a hostile file must not exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _no_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise CnnTreeError(f'duplicate key "{key}" in one JSON object')
        out[key] = value
    return out


def did_you_mean(word: str, options) -> str:
    """A 'did you mean' hint for the option closest to ``word``, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def fail(path: str, message: str):
    """Raise the one-line error for the value at JSON ``path``."""
    raise CnnTreeError(f"{path}: {message}" if path else message)


def _type_name(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


class Field(abc.ABC):
    """One kind of JSON value: how it is parsed, its default and how it is described."""

    default: Any = REQUIRED

    @abc.abstractmethod
    def parse(self, value, path: str, base=None):
        """The validated value at ``path``, defaults filled; ``base`` is the inherited value."""

    def describe(self) -> str:
        return type(self).__name__.lower()


class Num(Field):
    """A number in [lo, hi]; ``integer`` rejects fractions."""

    def __init__(self, default=REQUIRED, lo=None, hi=None, integer=False, lo_open=False):
        self.default, self.lo, self.hi, self.integer, self.lo_open = default, lo, hi, integer, lo_open

    def parse(self, value, path, base=None):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(path, f"expected {'an integer' if self.integer else 'a number'}, got {_type_name(value)}")
        if value != value or value in (float("inf"), float("-inf")):
            fail(path, f"expected a finite number, got {value}")
        if self.integer and int(value) != value:
            fail(path, f"expected an integer, got {value}")
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            fail(path, f"{value} is out of range ({'>' if self.lo_open else '>='} {self.lo})")
        if self.hi is not None and value > self.hi:
            fail(path, f"{value} is out of range (<= {self.hi})")
        return int(value) if self.integer else float(value)

    def describe(self):
        kind = "integer" if self.integer else "number"
        lo = "" if self.lo is None else f"{'>' if self.lo_open else '>='} {self.lo}"
        hi = "" if self.hi is None else f"<= {self.hi}"
        return f"{kind} {', '.join(s for s in (lo, hi) if s)}".strip()


class Bool(Field):
    """``true`` or ``false``."""

    def __init__(self, default=REQUIRED):
        self.default = default

    def parse(self, value, path, base=None):
        if not isinstance(value, bool):
            fail(path, f"expected true or false, got {_type_name(value)}")
        return value


class Text(Field):
    """A string, optionally one of ``choices``."""

    def __init__(self, default=REQUIRED, choices=None, nullable=False, max_len=10000):
        self.default, self.choices, self.nullable, self.max_len = default, choices, nullable, max_len

    def parse(self, value, path, base=None):
        if value is None and self.nullable:
            return None
        if not isinstance(value, str) or not value:
            fail(path, f"expected a non-empty string, got {_type_name(value)}")
        if len(value) > self.max_len:
            fail(path, f"a string of {len(value)} characters (at most {self.max_len})")
        if any(unicodedata.category(c) == "Cc" for c in value):
            fail(path, f"{value[:40]!r} holds control characters")
        if self.choices is not None and value not in self.choices:
            fail(path, f'unknown value "{value}"{did_you_mean(value, self.choices)}; '
                       f"expected one of {', '.join(self.choices)}")
        return value

    def describe(self):
        return "one of " + ", ".join(self.choices) if self.choices else "string"


class Ident(Text):
    """A name that becomes a file or folder name and an MLflow key (a spec's name, node ids): ASCII
    letters, digits, ``_``, ``-`` and ``.``, starting with a letter or digit, at most 64 characters;
    so it can never name a path outside the folder it is meant for."""

    PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

    def parse(self, value, path, base=None):
        value = super().parse(value, path, base)
        if not self.PATTERN.fullmatch(value) or ".." in value:
            fail(path, f"{value!r} is not a safe name: use letters, digits, _, - and . (not ..), "
                       "starting with a letter or digit, at most 64 characters")
        return value

    def describe(self):
        return "name of letters, digits, _ - ."


class Passthrough(Field):
    """Accepts the value as it is: a section is validated later, against its inherited defaults."""

    default = None

    def parse(self, value, path, base=None):
        return value


class Nullable(Field):
    """``null`` (the default), or a value ``field`` accepts."""

    def __init__(self, field: Field):
        self.field, self.default = field, None

    def parse(self, value, path, base=None):
        return None if value is None else self.field.parse(value, path, base)


class ListOf(Field):
    """A list of one field type, with length bounds and optionally unique items."""

    def __init__(self, item: Field, default=REQUIRED, min_len=0, max_len=None, unique=False):
        self.item, self.default, self.min_len, self.max_len, self.unique = item, default, min_len, max_len, unique

    def parse(self, value, path, base=None):
        if not isinstance(value, list):
            fail(path, f"expected a list, got {_type_name(value)}")
        if len(value) < self.min_len:
            fail(path, f"expected at least {self.min_len} item(s), got {len(value)}")
        if self.max_len is not None and len(value) > self.max_len:
            fail(path, f"expected at most {self.max_len} item(s), got {len(value)}")
        items = [self.item.parse(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if self.unique:
            seen = set()
            for i, v in enumerate(items):
                if v in seen:
                    fail(f"{path}[{i}]", f'"{v}" appears twice')
                seen.add(v)
        return items

    def describe(self):
        return f"list of {self.item.describe()}"


class MapOf(Field):
    """An object with free keys (e.g. a label map), values of one type."""

    def __init__(self, item: Field, default=REQUIRED):
        self.item, self.default = item, default

    def parse(self, value, path, base=None):
        if not isinstance(value, dict):
            fail(path, f"expected an object, got {_type_name(value)}")
        return {k: self.item.parse(v, f"{path}.{k}") for k, v in value.items()}

    def describe(self):
        return f"object of {self.item.describe()}"


class Either(Field):
    """The first of several field types that accepts the value (e.g. a split name or a fraction)."""

    def __init__(self, *options: Field, default=REQUIRED, expected: str = ""):
        self.options, self.default, self.expected = options, default, expected

    def parse(self, value, path, base=None):
        errors = []
        for option in self.options:
            try:
                return option.parse(value, path, base)
            except CnnTreeError as error:
                errors.append(str(error))
        for option, error in zip(self.options, errors):  # the option of the value's own type says best
            if isinstance(option, ListOf) and isinstance(value, list) or isinstance(option, Text) and \
                    isinstance(value, str):
                raise CnnTreeError(error)
        if self.expected:
            fail(path, f"expected {self.expected}, got {_type_name(value)} {value!r}")
        raise CnnTreeError(errors[0])

    def describe(self):
        return self.expected or " or ".join(o.describe() for o in self.options)


class Obj(Field):
    """A JSON object with known keys; missing keys come from ``base`` (inherited), then defaults."""

    def __init__(self, fields: dict[str, Field], default=REQUIRED):
        self.fields, self.default = fields, default

    def parse(self, value, path, base=None):
        if not isinstance(value, dict):
            fail(path, f"expected an object, got {_type_name(value)}")
        for key in value:
            if key not in self.fields:
                fail(_join(path, key), f'unknown key "{key}"{did_you_mean(key, self.fields)}')
        out = {}
        for key, field in self.fields.items():
            inherited = base.get(key) if isinstance(base, dict) else None
            if key in value:
                out[key] = field.parse(value[key], _join(path, key), inherited)
            elif isinstance(base, dict) and key in base:
                out[key] = base[key]
            elif field.default is REQUIRED:
                fail(_join(path, key), "is required")
            else:
                out[key] = _fresh(field, _join(path, key))
        return out


class Tagged(Field):
    """An object whose ``tag`` key (e.g. ``name``) picks the set of other keys it may have.

    A bare string is shorthand for ``{tag: string}``. Inherited values are only used when the
    tag is the same: switching ``vgg`` to ``lenet`` does not carry VGG's parameters over.
    """

    def __init__(self, tag: str, variants: dict[str, dict[str, Field]], default=REQUIRED):
        self.tag, self.variants, self.default = tag, variants, default

    def parse(self, value, path, base=None):
        if isinstance(value, str):
            value = {self.tag: value}
        if not isinstance(value, dict):
            fail(path, f"expected an object or a string, got {_type_name(value)}")
        inherited_tag = base.get(self.tag) if isinstance(base, dict) else None
        tag = value.get(self.tag, inherited_tag)
        if tag is None:
            fail(_join(path, self.tag), "is required")
        Text(choices=list(self.variants)).parse(tag, _join(path, self.tag))
        fields = {self.tag: Text(choices=list(self.variants)), **self.variants[tag]}
        return Obj(fields).parse(value, path, base if tag == inherited_tag else None)

    def describe(self):
        return f"object with {self.tag} one of " + ", ".join(self.variants)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fresh(field: Field, path: str):
    """A field's default, expanded (an object's defaults are themselves parsed)."""
    default = field.default
    if isinstance(field, (Obj, Tagged)) and isinstance(default, (dict, str)):
        return field.parse(default, path)
    return list(default) if isinstance(default, list) else dict(default) if isinstance(default, dict) else default
