"""
The twistd plugin's options and service maker: the only module that reaches for the global
reactor.
"""

import atexit
import os
import sys

from twisted.python import usage

from stellarflow import config as configmod
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
    ]
    optFlags = [
        ["check", None, "Validate the configuration file, print the result and exit."],
    ]

    #: where --check and config errors are reported (tests replace it)
    stderr = sys.stderr
    stdout = sys.stdout
    environ = None

    def postOptions(self):
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
    return "\n".join(lines)


def makeService(options):
    """
    Build the daemon on the global reactor.

    Exit status: 0 after a clean stop on SIGTERM or SIGINT (twistd would otherwise re-raise
    the signal and exit 143/130); 1 when a pipeline could not start (a port in use), after
    twistd has shut everything down.
    """
    from twisted.internet import reactor

    from stellarflow.daemon import Daemon

    daemon = Daemon(options.loaded, reactor, stop=lambda: reactor.callWhenRunning(reactor.stop))

    def cleanStop():
        # A graceful stop on a signal is a success, not a death by signal.
        if hasattr(reactor, "_exitSignal"):
            reactor._exitSignal = None

    reactor.addSystemEventTrigger("after", "shutdown", cleanStop)

    def exitStatus():
        if daemon.exitCode:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(daemon.exitCode)

    atexit.register(exitStatus)
    return daemon


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
