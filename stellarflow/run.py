"""
C{stellarflow -c pipeline.yaml}: the daemon in the foreground, with the exit status a supervisor
or a script needs.

C{twistd -n stellarflow -c pipeline.yaml} runs the very same service, with twistd's own exit
status: after a clean stop on SIGTERM or SIGINT twistd re-raises the signal (status 143 or 130,
which systemd counts as a clean stop), and it exits 0 even when a pipeline could not start or
failed, because twistd gives a service no public way to set the status.  This runner exits:

  - 0 after a clean stop on SIGTERM or SIGINT, or once every pipeline completed (a backfill);
  - 1 when the config is invalid, a pipeline could not start (a port in use) or failed (its
    source cannot go on);
  - 2 for bad command-line options.

With this module, C{tap.py} is the only other one that reaches for the global reactor.
"""

import sys

from twisted.logger import globalLogBeginner
from twisted.python import usage

from stellarflow import logs
from stellarflow.tap import Options


class RunOptions(Options):
    """
    C{stellarflow -c FILE [--check] [--log-format text|json]}.
    """

    optParameters = Options.optParameters + [
        ["log-format", None, "text", "text (human-readable, as twistd writes) or json (one object per line)"],
    ]

    def postOptions(self):
        if self["log-format"] not in ("text", "json"):
            raise usage.UsageError("--log-format must be text or json, not {!r}".format(self["log-format"]))
        Options.postOptions(self)


def run(argv, reactor=None, stdout=None):
    """
    Run the daemon for C{argv} (without the program name) until it stops; return the status.
    """
    stdout = stdout if stdout is not None else sys.stdout
    options = RunOptions()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        sys.stderr.write("{}\nstellarflow: {}\n".format(options, e))
        return 2
    except SystemExit as e:  # --check, or the config is invalid (the problems are printed)
        return e.code
    if reactor is None:
        from twisted.internet import reactor
    from stellarflow.daemon import Daemon

    observer = logs.JSONLinesObserver(stdout) if options["log-format"] == "json" else logs.text(stdout)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    daemon = Daemon(options.loaded, reactor, stop=lambda: reactor.callWhenRunning(reactor.stop))
    reactor.callWhenRunning(daemon.startService)
    reactor.addSystemEventTrigger("before", "shutdown", daemon.stopService)
    reactor.run()
    return daemon.exitCode


def main():
    """
    The C{stellarflow} console script.
    """
    sys.exit(run(sys.argv[1:]))
