"""
Load a pipeline YAML file into validated, typed records.

Two forms are accepted (both from the WebSocket streaming guide):

- the full form: a top-level ``pipelines:`` mapping of named pipelines, each with ``source``,
  ``processors`` and ``consumers``, each entry ``{type, config}``;
- the short form: ``consumers:`` (with ``source`` and ``processors`` beside it) at the top level,
  run as one pipeline named ``default``.

A pipeline without ``source`` follows the public testnet RPC with ``RPCSourceAdapter``'s defaults;
without ``processors`` it runs ``GetEventsRPC``.  Strings may use ``${VAR}`` and
``${VAR:-default}``.  Every problem is collected and reported at once by L{ConfigError}.
"""

import os

import attr
import yaml

from stellarflow.envexpand import expand
from stellarflow.registry import Registry, UnknownComponent
from stellarflow.schema import (
    ConfigError,
    Integer,
    Problems,
    String,
    join,
    redact,
    shown,
    suggest,
)

DEFAULT_SOURCE = {"type": "RPCSourceAdapter", "config": {}}
DEFAULT_PROCESSORS = [{"type": "GetEventsRPC", "config": {}}]
DEFAULT_MAX_IN_FLIGHT = 8

PIPELINE_KEYS = ("source", "processors", "consumers", "max_in_flight")
TOP_KEYS = ("pipelines", "state_dir", "admin") + PIPELINE_KEYS


@attr.s(frozen=True)
class ComponentSpec:
    """
    One validated ``{type, config}`` entry.
    """

    role = attr.ib()
    type = attr.ib()
    factory = attr.ib()
    config = attr.ib()
    path = attr.ib()

    def redacted(self):
        """
        The config with secrets hidden, for logs.
        """
        return redact(self.config, self.factory.configSchema)


@attr.s(frozen=True)
class PipelineSpec:
    name = attr.ib()
    source = attr.ib()
    processors = attr.ib()
    consumers = attr.ib()
    max_in_flight = attr.ib(default=DEFAULT_MAX_IN_FLIGHT)


@attr.s(frozen=True)
class DaemonConfig:
    filename = attr.ib()
    pipelines = attr.ib()
    state_dir = attr.ib(default="stellarflow-state")
    admin = attr.ib(default=None)
    #: L{stellarflow.schema.Problem}s that are warnings (valid, but likely not what was meant).
    warnings = attr.ib(default=())


def load(filename, environ=None, registry=None):
    """
    Read, expand and validate C{filename}.

    @raise ConfigError: listing every problem, when the file is unreadable or invalid.
    """
    try:
        with open(filename, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(filename, [_problem("", "cannot read file: {}".format(e.strerror or e))])
    return parse(text, filename, environ, registry)


def parse(text, filename="<config>", environ=None, registry=None):
    """
    Validate the YAML C{text}; C{filename} only names it in messages.
    """
    environ = os.environ if environ is None else environ
    registry = registry or Registry()
    problems = Problems()
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = "line {}, column {}".format(mark.line + 1, mark.column + 1) if mark else ""
        reason = getattr(e, "problem", None) or str(e)
        problems.add(where, "not valid YAML: {}".format(reason))
        raise ConfigError(filename, problems)

    if document is None:
        document = {}
    if not isinstance(document, dict):
        problems.add("", "got {}; expected a mapping with 'pipelines:' or 'consumers:'".format(shown(document)))
        raise ConfigError(filename, problems)

    document = expand(document, environ, "", problems)
    result = _daemon(document, filename, registry, problems)
    if problems:
        raise ConfigError(filename, problems)
    result = attr.evolve(result, warnings=tuple(problems.warnings))
    return result


def _problem(path, message):
    p = Problems()
    p.add(path, message)
    return p[0]


def _daemon(document, filename, registry, problems):
    for key in document:
        if key not in TOP_KEYS:
            problems.add(str(key), "unknown key{}; known keys: {}".format(suggest(key, TOP_KEYS), ", ".join(TOP_KEYS)))
    stateDir = String(nonEmpty=True).check(document.get("state_dir", "stellarflow-state"), "state_dir", problems)
    admin = None
    if document.get("admin") is not None:
        from stellarflow.admin import adminSchema

        admin = adminSchema.check(document["admin"], "admin", problems)

    pipelines = []
    if "pipelines" in document:
        stray = [k for k in PIPELINE_KEYS if k in document]
        for key in stray:
            problems.add(key, "cannot be used beside 'pipelines:'; move it into a pipeline under 'pipelines:'")
        named = document["pipelines"]
        if not isinstance(named, dict) or not named:
            problems.add("pipelines", "got {}; expected a mapping of pipeline names to pipelines".format(shown(named)))
        else:
            for name, body in named.items():
                pipelines.append(_pipeline(str(name), body, join("pipelines", str(name)), registry, problems))
    elif "consumers" in document:
        body = {k: document[k] for k in PIPELINE_KEYS if k in document}
        pipelines.append(_pipeline("default", body, "", registry, problems))
    else:
        problems.add("", "no pipelines; expected a top-level 'pipelines:' mapping or a 'consumers:' list")

    return DaemonConfig(filename=filename, pipelines=pipelines, state_dir=stateDir, admin=admin)


def _pipeline(name, body, path, registry, problems):
    if not isinstance(body, dict):
        problems.add(path, "got {}; expected a mapping with source, processors and consumers".format(shown(body)))
        return None
    for key in body:
        if key not in PIPELINE_KEYS:
            problems.add(
                join(path, key),
                "unknown key{}; known keys: {}".format(suggest(key, PIPELINE_KEYS), ", ".join(PIPELINE_KEYS)),
            )

    source = _component("source", body.get("source", DEFAULT_SOURCE), join(path, "source"), registry, problems)

    processors = []
    raw = body.get("processors", DEFAULT_PROCESSORS)
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        problems.add(join(path, "processors"), "got {}; expected a list of {{type, config}}".format(shown(raw)))
    else:
        for i, entry in enumerate(raw):
            processors.append(_component("processor", entry, join(join(path, "processors"), i), registry, problems))

    consumers = []
    raw = body.get("consumers")
    if not isinstance(raw, list) or not raw:
        problems.add(join(path, "consumers"), "got {}; expected a non-empty list of {{type, config}}".format(shown(raw)))
    else:
        for i, entry in enumerate(raw):
            consumers.append(_component("consumer", entry, join(join(path, "consumers"), i), registry, problems))

    maxInFlight = Integer(1, 1000).check(
        body.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT), join(path, "max_in_flight"), problems
    )
    return PipelineSpec(name=name, source=source, processors=processors, consumers=consumers, max_in_flight=maxInFlight)


def _component(role, entry, path, registry, problems):
    if not isinstance(entry, dict):
        problems.add(path, "got {}; expected a mapping with 'type' and 'config'".format(shown(entry)))
        return None
    for key in entry:
        if key not in ("type", "config"):
            problems.add(join(path, key), "unknown key{}; expected only 'type' and 'config'".format(suggest(key, ("type", "config"))))
    name = entry.get("type")
    known = registry.names(role)
    if not isinstance(name, str) or not name:
        problems.add(join(path, "type"), "got {}; expected a {} type, one of: {}".format(shown(name), role, ", ".join(known)))
        return None
    try:
        factory = registry.lookup(role, name)
    except UnknownComponent:
        problems.add(
            join(path, "type"),
            "unknown {} type {!r}{}; known {} types: {}".format(role, name, suggest(name, known), role, ", ".join(known)),
        )
        return None
    except Exception as e:  # a broken third-party plugin must not hide other problems
        problems.add(join(path, "type"), "{} type {!r} could not be loaded: {}: {}".format(role, name, type(e).__name__, e))
        return None

    raw = entry.get("config", {})
    if raw is None:
        raw = {}
    before = len(problems)
    config = factory.configSchema.check(raw, join(path, "config"), problems)
    if len(problems) > before:
        return None
    return ComponentSpec(role=role, type=name, factory=factory, config=config, path=path)
