"""
The Dockerfile and the systemd unit start the plugin the way they say.  No Docker engine or
systemd runs here, so their commands are taken from the files and run against the plugin with
C{--check}.
"""

import json
import os
import re
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import REPO


def read(*parts):
    with open(os.path.join(REPO, *parts)) as f:
        return f.read()


def runCheck(argv):
    """
    Run C{argv} (a C{stellarflow} command line) with C{--check}; return (status, output).
    """
    env = dict(os.environ, PYTHONPATH=REPO)
    argv = [sys.executable, "-c", "from stellarflow.run import main; main()"] + argv[1:] + ["--check"]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=60)
    return proc.returncode, (proc.stdout + proc.stderr).decode()


class DockerfileTests(SynchronousTestCase):
    def instruction(self, name):
        found = re.findall(r"^{}\s+(.*)$".format(name), read("Dockerfile"), re.M)
        self.assertTrue(found, name)
        return found[-1]

    def test_slimNonRoot(self):
        self.assertTrue(self.instruction("FROM").startswith("python:3.11-slim"))
        self.assertNotIn(self.instruction("USER"), ("root", "0"))
        self.assertIn("8080", self.instruction("EXPOSE"))

    def test_entryRunsThePlugin(self):
        """
        ENTRYPOINT + CMD is C{stellarflow -c /app/config/<file>} (the runner, for its exit
        statuses); with the mounted config directory replaced by the repository's, it validates.
        """
        entry = json.loads(self.instruction("ENTRYPOINT"))
        cmd = json.loads(self.instruction("CMD"))
        self.assertEqual(entry, ["stellarflow"])
        self.assertEqual(cmd[0], "-c")
        self.assertTrue(cmd[1].startswith("/app/config/"))
        local = os.path.join(REPO, "config", cmd[1][len("/app/config/"):])
        status, output = runCheck(entry + [cmd[0], local])
        self.assertEqual(status, 0, output)
        self.assertIn("OK, 1 pipeline(s)", output)


class SystemdUnitTests(SynchronousTestCase):
    def setting(self, name):
        [value] = re.findall(r"^{}=(.*)$".format(name), read("config", "stellarflow.service"), re.M)
        return value

    def test_restartAndStop(self):
        self.assertEqual(self.setting("Restart"), "on-failure")
        self.assertEqual(self.setting("KillSignal"), "SIGTERM")

    def test_execStartRunsThePlugin(self):
        argv = self.setting("ExecStart").split()
        self.assertTrue(argv[0].endswith("/bin/stellarflow"))
        self.assertEqual(argv[1], "-c")
        argv[argv.index("-c") + 1] = os.path.join(REPO, "config", "websocket.yaml")
        status, output = runCheck(argv)
        self.assertEqual(status, 0, output)


class ComposeTests(SynchronousTestCase):
    """
    deploy/docker-compose.yml: Redis, one ingest, two edges and a load balancer; every
    stellarflow service's command validates with the environment the file gives it.
    """

    def test_servicesValidate(self):
        import yaml

        compose = yaml.safe_load(read("deploy", "docker-compose.yml"))
        services = compose["services"]
        self.assertEqual(sorted(services), ["edge-1", "edge-2", "ingest", "lb", "redis"])
        for name in ("ingest", "edge-1", "edge-2"):
            service = services[name]
            command = service["command"]
            self.assertEqual(command[0], "-c")
            local = os.path.join(REPO, "config", command[1][len("/app/config/"):])
            env = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in service["environment"].items()}
            old = dict(os.environ)
            os.environ.update(env)
            try:
                status, output = runCheck(["stellarflow", "-c", local])
            finally:
                os.environ.clear()
                os.environ.update(old)
            self.assertEqual(status, 0, output)
        self.assertIn("server edge-1 edge-1:8080", read("deploy", "haproxy.cfg"))
        self.assertIn("server edge-2 edge-2:8080", read("deploy", "haproxy.cfg"))
