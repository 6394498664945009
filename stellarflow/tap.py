"""
The twistd plugin's options and service maker.  With L{stellarflow.run} (the C{stellarflow}
command), the only module that reaches for the global reactor.
"""

import os
import sys

from twisted.python import usage

from stellarflow import config as configmod
from stellarflow import logs
from stellarflow.schema import ConfigError


class Options(usage.Options):
    """
    C{twistd stellarflow -c pipeline.yaml [--check]}.
    """

    synopsis = "-c FILE [--check]"
    longdesc = (
        "Run the pipelines defined in a YAML file: a source reads Stellar contract events from "
        "a Stellar RPC server, processors decode them, consumers (WebSocket, PostgreSQL) deliver "
        "them. ${VAR} and ${VAR:-default} in the file are read from the environment."
    )
    optParameters = [
        ["config", "c", None, "Pipeline configuration file (YAML). Required."],
        [
            "reset-checkpoint",
            None,
            None,
            "Forget PIPELINE's checkpoint (its state file), so that it starts where its source is "
            "configured to start, and exit.",
        ],
    ]
    optFlags = [
        ["check", None, "Validate the configuration file, print the result and exit."],
    ]

    #: where --check and config errors are reported (tests replace it)
    stderr = sys.stderr
    stdout = sys.stdout
    environ = None

    def postOptions(self):
        logs.defaultLogger(getattr(self, "parent", None))
        if not self["config"]:
            raise usage.UsageError("--config/-c FILE is required (a pipeline YAML file)")
        try:
            self.loaded = configmod.load(self["config"], environ=self.environ)
        except ConfigError as e:
            self.stderr.write(e.render() + "\n")
            self.stderr.flush()
            raise SystemExit(1)
        if self["check"]:
            self.stdout.write(describe(self.loaded) + "\n")
            self.stdout.flush()
            raise SystemExit(0)
        if self["reset-checkpoint"] is not None:
            self.stdout.write(resetCheckpoint(self.loaded, self["reset-checkpoint"]) + "\n")
            self.stdout.flush()
            raise SystemExit(0)


def describe(loaded):
    """
    A short summary of a valid config, secrets hidden.
    """
    lines = ["{}: OK, {} pipeline(s)".format(loaded.filename, len(loaded.pipelines))]
    for p in loaded.pipelines:
        lines.append(
            "  {}: {} -> {} -> {}".format(
                p.name,
                p.source.type,
                ", ".join(x.type for x in p.processors) or "(no processors)",
                ", ".join(x.type for x in p.consumers),
            )
        )
    lines.extend("warning: " + w.render(loaded.filename) for w in loaded.warnings)
    return "\n".join(lines)


def resetCheckpoint(loaded, name):
    """
    Remove pipeline C{name}'s state file; the text says what was done and what was not (durable
    consumers keep their own position).

    @raise usage.UsageError: there is no such pipeline.
    """
    from stellarflow.checkpoint import FileCheckpointStore

    names = [p.name for p in loaded.pipelines]
    if name not in names:
        raise usage.UsageError("no pipeline {!r} in {}; its pipelines: {}".format(name, loaded.filename, ", ".join(names)))
    store = FileCheckpointStore(loaded.state_dir)
    path = store.path(name)
    existed = os.path.exists(path)
    store.reset(name)
    lines = ["{} {}".format("Removed" if existed else "No checkpoint at", path)]
    spec = next(p for p in loaded.pipelines if p.name == name)
    for consumer in spec.consumers:
        if consumer.type == "SaveToPostgreSQL":
            table = consumer.config.get("table") or "stellar_events"
            lines.append(
                "{} keeps its own position; to reset it too: DELETE FROM {}_checkpoints WHERE pipeline = "
                "'{}';".format(consumer.path, table, name)
            )
    return "\n".join(lines)


def makeService(options):
    """
    Build the daemon on the global reactor.

    Exit status is twistd's own: after a clean stop on SIGTERM or SIGINT twistd re-raises the
    signal (143 or 130; systemd counts both as clean); when a pipeline cannot start or fails
    the daemon logs it at critical level and stops, and twistd exits 0.  The C{stellarflow}
    command (L{stellarflow.run}) runs the same service with statuses 0 and 1 instead.
    """
    from twisted.internet import reactor

    from stellarflow.daemon import Daemon

    return Daemon(options.loaded, reactor, stop=lambda: reactor.callWhenRunning(reactor.stop))


def checkMain(argv=None):
    """
    C{stellarflow-check FILE...}: validate config files without starting anything.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write("usage: stellarflow-check FILE [FILE...]\n")
        return 2
    status = 0
    for name in argv:
        try:
            sys.stdout.write(describe(configmod.load(name)) + "\n")
        except ConfigError as e:
            sys.stderr.write(e.render() + "\n")
            status = 1
    return status


def _checkEntry():
    sys.exit(checkMain())
