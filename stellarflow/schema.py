"""
Declarative config schemas: every component describes its ``config`` mapping with one.

Validation never stops at the first problem: each one is recorded in a L{Problems} list with its
path (``pipelines.X.consumers[0].config.port``), the value found and what was expected, so an
operator sees everything wrong with a file at once.  Values that are secrets are never repeated
in messages.
"""

import difflib
import math
from decimal import Decimal, InvalidOperation

import attr

_REQUIRED = object()


@attr.s(frozen=True)
class Problem:
    """
    One thing wrong with a config file.
    """

    path = attr.ib()
    message = attr.ib()

    def render(self, filename):
        where = "{}: {}".format(filename, self.path) if self.path else filename
        return "{}: {}".format(where, self.message)


class Problems(list):
    """
    The problems found so far, in file order, and the warnings: things that are valid but
    almost certainly not what was meant (reported by C{--check} and at start, never fatal).
    """

    def __init__(self, *args):
        list.__init__(self, *args)
        self.warnings = []

    def add(self, path, message):
        self.append(Problem(path, message))

    def warn(self, path, message):
        self.warnings.append(Problem(path, message))

    def render(self, filename):
        return "\n".join(p.render(filename) for p in self)


class ConfigError(Exception):
    """
    A config file is not valid; C{str()} lists every problem, one per line.
    """

    def __init__(self, filename, problems):
        self.filename = filename
        self.problems = list(problems)
        Exception.__init__(self, self.render())

    def render(self):
        count = len(self.problems)
        head = "{}: {} configuration error{}".format(
            self.filename, count, "" if count == 1 else "s"
        )
        return head + "\n" + "\n".join("  " + p.render(self.filename) for p in self.problems)


def join(path, key):
    """
    Extend a dotted config path with a mapping key or a list index.
    """
    if isinstance(key, int):
        return "{}[{}]".format(path, key)
    return "{}.{}".format(path, key) if path else str(key)


def shown(value, secret=False):
    """
    How a bad value appears in a message: repr-like, short, secrets hidden.
    """
    if secret:
        return "<hidden>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def suggest(name, known):
    """
    A " (did you mean 'x'?)" hint for a misspelt key, or "".
    """
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return " (did you mean {!r}?)".format(close[0]) if close else ""


class Kind:
    """
    A value type: C{check(value, path, problems)} returns the converted value or L{INVALID}.
    """

    expected = "a value"
    secret = False

    def fail(self, value, path, problems, expected=None):
        problems.add(path, "got {}; expected {}".format(shown(value, self.secret), expected or self.expected))
        return INVALID

    def check(self, value, path, problems):  # pragma: no cover - abstract
        raise NotImplementedError


INVALID = object()


class String(Kind):
    def __init__(self, choices=None, nonEmpty=False, secret=False, validator=None, shownAs=None):
        self.shownAs = shownAs
        self.choices = tuple(choices) if choices else None
        self.nonEmpty = nonEmpty
        self.secret = secret
        self.validator = validator
        if self.choices:
            self.expected = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            self.expected = "a non-empty string" if nonEmpty else "a string"

    def check(self, value, path, problems):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return self.fail(value, path, problems)
        if not isinstance(value, str):
            value = str(value)
        if self.choices and value not in self.choices:
            return self.fail(value, path, problems)
        if self.nonEmpty and not value.strip():
            return self.fail(value, path, problems)
        if self.validator is not None:
            reason = self.validator(value)
            if reason:
                return self.fail(value, path, problems, reason)
        return value


class Integer(Kind):
    """
    An integer; a string of digits (``"8080"``) is accepted, as YAML users write both.
    """

    def __init__(self, minimum=None, maximum=None):
        self.minimum = minimum
        self.maximum = maximum
        self.expected = "an integer" + _bounds(minimum, maximum)

    def check(self, value, path, problems):
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(value, path, problems)
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            return self.fail(value, path, problems)
        return value


class Number(Kind):
    """
    A real number (seconds, rates); strings holding a number are accepted.
    """

    def __init__(self, minimum=None, maximum=None, exclusiveMinimum=False):
        self.minimum = minimum
        self.maximum = maximum
        self.exclusiveMinimum = exclusiveMinimum
        low = "> {}".format(minimum) if exclusiveMinimum and minimum is not None else None
        self.expected = "a number" + (" " + low if low else _bounds(minimum, maximum))

    def check(self, value, path, problems):
        if isinstance(value, str):
            try:
                value = float(Decimal(value.strip()))
            except (InvalidOperation, ValueError):
                return self.fail(value, path, problems)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return self.fail(value, path, problems)
        if self.minimum is not None and (
            value < self.minimum or (self.exclusiveMinimum and value == self.minimum)
        ):
            return self.fail(value, path, problems)
        if self.maximum is not None and value > self.maximum:
            return self.fail(value, path, problems)
        return value


class Boolean(Kind):
    expected = "true or false"

    def check(self, value, path, problems):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        return self.fail(value, path, problems)


class ListOf(Kind):
    def __init__(self, item, minItems=0, maxItems=None):
        self.item = item
        self.secret = getattr(item, "secret", False)
        self.minItems = minItems
        self.maxItems = maxItems
        self.expected = "a list of {}{}".format(
            getattr(item, "expected", "values"),
            "" if maxItems is None else " (at most {})".format(maxItems),
        )

    def check(self, value, path, problems):
        if value is None:
            value = []
        if not isinstance(value, list):
            return self.fail(value, path, problems)
        if len(value) < self.minItems:
            return self.fail(value, path, problems, "at least {} item(s)".format(self.minItems))
        if self.maxItems is not None and len(value) > self.maxItems:
            return self.fail(
                "{} items".format(len(value)), path, problems, "at most {} items".format(self.maxItems)
            )
        out = []
        for i, item in enumerate(value):
            out.append(self.item.check(item, join(path, i), problems))
        return out if INVALID not in out else INVALID


class OneOf(Kind):
    """
    The first of several kinds that accepts the value, without recording the others' problems.
    """

    def __init__(self, *kinds, expected=None):
        self.kinds = kinds
        self.expected = expected or " or ".join(k.expected for k in kinds)

    def check(self, value, path, problems):
        for kind in self.kinds:
            scratch = Problems()
            result = kind.check(value, path, scratch)
            if not scratch:
                return result
        return self.fail(value, path, problems)


@attr.s(frozen=True)
class Field:
    """
    One key of a schema: its kind, default (absent: required) and a line of documentation.
    """

    kind = attr.ib()
    default = attr.ib(default=_REQUIRED)
    doc = attr.ib(default="")

    @property
    def required(self):
        return self.default is _REQUIRED


class Schema(Kind):
    """
    A mapping with known keys.  Unknown keys are errors, with a "did you mean" hint.

    @param check: optional C{check(config, path, problems)} for rules across fields, run only
        when every field was valid.
    """

    expected = "a mapping"

    def __init__(self, fields, check=None, doc=""):
        self.fields = dict(fields)
        self.crossCheck = check
        self.doc = doc

    def check(self, value, path, problems):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return self.fail(value, path, problems)
        before = len(problems)
        out = {}
        for key in value:
            if key not in self.fields:
                known = ", ".join(sorted(self.fields)) or "none"
                problems.add(
                    join(path, key),
                    "unknown key{}; known keys: {}".format(suggest(key, self.fields), known),
                )
        for name, field in self.fields.items():
            if name in value:
                out[name] = field.kind.check(value[name], join(path, name), problems)
            elif field.required:
                problems.add(join(path, name), "missing; expected {}".format(field.kind.expected))
            else:
                out[name] = field.default
        if len(problems) == before and self.crossCheck is not None:
            self.crossCheck(out, path, problems)
        return INVALID if len(problems) > before else out

    def validate(self, value, path=""):
        """
        Validate C{value}; return C{(config, problems)} where C{config} is None when invalid.
        """
        problems = Problems()
        result = self.check(value, path, problems)
        return (None if result is INVALID else result), problems

    def secretKeys(self):
        return {name for name, f in self.fields.items() if getattr(f.kind, "secret", False)}


def redact(config, schema):
    """
    A copy of a validated config mapping with secret values replaced, and values whose kind
    has C{shownAs} (URLs that may carry API keys) shortened, for logs and dumps.
    """
    out = dict(config)
    for name in schema.secretKeys():
        if out.get(name):
            out[name] = "<hidden>"
    for name, field in schema.fields.items():
        if isinstance(field.kind, Schema) and isinstance(out.get(name), dict):
            out[name] = redact(out[name], field.kind)
    for name, field in schema.fields.items():
        shownAs = getattr(field.kind, "shownAs", None)
        if shownAs is not None and out.get(name):
            out[name] = shownAs(out[name])
    return out


def _bounds(minimum, maximum):
    if minimum is not None and maximum is not None:
        return " from {} to {}".format(minimum, maximum)
    if minimum is not None:
        return " >= {}".format(minimum)
    if maximum is not None:
        return " <= {}".format(maximum)
    return ""
