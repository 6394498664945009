"""
Run the benchmark suite: each benchmark in its own process, then a table of the results, the
goals with a pass/miss column, and a JSON file in benchmarks/results/.

    .venv/bin/python -m benchmarks [--quick] [--only fanout,latency,...] [--repeats N]
        [--set fanout.clients=[100,1000]] [--output FILE]

``--quick`` is a smoke run of about a minute (small sizes, one repeat): its figures show that
everything works, not what the code can do.  The full suite takes about five minutes on two
cores.
"""

import argparse
import datetime
import importlib
import json
import os
import subprocess
import sys
import time

from benchmarks.common import REPO, machine, median

#: (name, module) in the order they run.
BENCHMARKS = [
    ("fanout", "benchmarks.fanout"),
    ("latency", "benchmarks.latency"),
    ("memory", "benchmarks.memory"),
    ("ingest", "benchmarks.ingest"),
    ("postgres", "benchmarks.postgres"),
    ("ledgers", "benchmarks.ledgers"),
    ("history", "benchmarks.history"),
    ("redis", "benchmarks.redis"),
]

#: The goals: (what, metric, comparison, target, unit).
GOALS = [
    ("fan-out at saturation, all matching, 1000 clients", "fanout.saturation.deliveries_per_s", ">=", 250000,
     "deliveries/s"),
    ("server CPU per delivery, 1000 clients x 100 ev/s, a page every 50 ms", "fanout.steady.server_cpu_us_per_delivery",
     "<=", 3.0, "us"),
    ("server CPU per delivery, 1000 clients x 100 ev/s, whole daemon, 5 s ledgers",
     "latency.100.server_cpu_us_per_delivery", "<=", 3.0, "us"),
    ("own-account filters: per-event cost 10,000 vs 10 clients",
     "fanout.account.ratio.10000.10.server_cpu_us_per_event", "<=", 2.0, "x"),
    ("fan-out spread p99 (first to last client), 1000 clients x 100 ev/s", "latency.100.spread_ms.p99", "<=",
     25.0, "ms"),
    ("RSS per idle registered client, 10,000 clients", "memory.idle.10000.kib_per_client", "<=", 12.0, "KiB"),
    ("decode, base64 XDR", "ingest.base64.decode_events_per_s", ">=", 20000, "events/s"),
    ("decode, xdrFormat json", "ingest.json.decode_events_per_s", ">=", 20000, "events/s"),
    ("PostgreSQL, default batch_size", "postgres.default.events_per_s", ">=", 20000, "events/s"),
    ("getLedgers catch-up, pubnet-size ledgers to messages", "ledgers.catchup.all.ledgers_per_s", ">=", 15,
     "ledgers/s"),
    ("reactor lag p99 while catching up, 1000 clients", "ledgers.catchup.clients.lag_ms_p99", "<=", 20.0, "ms"),
    ("ledger at the tip: getLedgers answer -> last client, p99", "ledgers.tip.latency_ms_p99", "<=", 1000.0, "ms"),
    ("PostgreSQL, default batch_size, share of a raw COPY of the same rows", "postgres.default.ratio_to_copy", ">=",
     0.5, "x"),
    ("PostgreSQL, 6:2:2 events:payments:trades, share of a raw COPY", "postgres.mix.ratio_to_copy", ">=", 0.5, "x"),
    ("fan-out via Redis: 2 edge processes vs 1 on one host, deliveries/s", "redis.saturation.ratio_2_to_1", ">=", 1.6,
     "x"),
    ("the Redis hop at p99, 1000 clients over 2 edges (vs straight from one process)", "redis.latency.hop_p99_ms",
     "<=", 5.0, "ms"),
]

RESULT_MARK = "BENCHMARK-RESULT "


# -- inside a benchmark process ----------------------------------------------------------------


def _printResult(result):
    sys.stdout.write(RESULT_MARK + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def benchmarkMain(measure):
    """
    The entry point of one benchmark process: parameters as JSON in argv[1]; the result is
    printed on stdout after L{RESULT_MARK}.  Errors are logged to stderr.
    """
    from twisted.internet import task
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    params = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.error)])],
        redirectStandardIO=False,
    )

    def run(reactor):
        return measure(reactor, **params).addCallback(_printResult)

    task.react(run)


# -- the suite ---------------------------------------------------------------------------


def runOne(name, module, params, timeout):
    """Run one benchmark process; its result dict, or one with an ``error``."""
    argv = [sys.executable, "-m", module, json.dumps(params)]
    started = time.time()
    try:
        done = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"benchmark": name, "error": "timed out after {} s".format(timeout), "seconds": timeout}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            result["seconds"] = time.time() - started
            return result
    return {"benchmark": name, "error": "exit status {}, no result (see stderr above)".format(done.returncode),
            "seconds": time.time() - started}


def mergeRuns(results):
    """One result from several processes' results: the median of every numeric metric."""
    good = [r for r in results if "error" not in r]
    if not good:
        return results[0]
    merged = dict(good[0])
    merged["metrics"] = {}
    for key in good[0]["metrics"]:
        values = [r["metrics"].get(key) for r in good]
        if all(isinstance(v, bool) for v in values):
            merged["metrics"][key] = all(values)
        elif all(isinstance(v, (int, float)) for v in values):
            merged["metrics"][key] = median(values)
        else:
            merged["metrics"][key] = values[0]
    merged["processes"] = [r.get("metrics") for r in good]
    merged["seconds"] = sum(r.get("seconds", 0) for r in results)
    return merged


def mergeParts(parts):
    """One result from the results of a benchmark's parts (each run in its own processes)."""
    if len(parts) == 1:
        return parts[0]
    errors = [p["error"] for p in parts if "error" in p]
    good = [p for p in parts if "error" not in p]
    if not good:
        return parts[0]
    merged = dict(good[0])
    merged["metrics"] = {}
    merged["runs"] = {}
    for part in good:
        merged["metrics"].update(part.get("metrics", {}))
        for key, value in part.get("runs", {}).items():
            merged["runs"].setdefault(key, []).extend(value)
    merged["parts"] = [p.get("params") for p in parts]
    merged["seconds"] = sum(p.get("seconds", 0) for p in parts)
    if errors:
        merged["error"] = "; ".join(errors)
    return merged


def fmt(value):
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if abs(value) >= 1000:
        return "{:,.0f}".format(value)
    if abs(value) >= 100:
        return "{:.0f}".format(value)
    if abs(value) >= 10:
        return "{:.1f}".format(value)
    return "{:.2f}".format(value)


def evaluate(metrics):
    rows = []
    for what, key, op, target, unit in GOALS:
        value = metrics.get(key)
        if value is None:
            verdict = "n/a"
        elif op == ">=":
            verdict = "pass" if value >= target else "MISS"
        else:
            verdict = "pass" if value <= target else "MISS"
        rows.append({"goal": what, "metric": key, "target": "{} {} {}".format(op, fmt(target), unit),
                     "measured": None if value is None else value, "unit": unit, "verdict": verdict})
    return rows


def table(headers, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def render(report):
    """The results and goals as Markdown tables."""
    m = report["machine"]
    lines = [
        "stellarflow benchmarks, {} ({}), {} CPU(s): {}, Python {}".format(
            report["date"], "quick" if report["quick"] else "full", m["nproc"], m["cpu_model"], m["python"]),
        "",
    ]
    rows = []
    for result in report["results"]:
        for row in result.get("rows", ()):
            rows.append([row["label"], fmt(row["value"]), row["unit"], row.get("note", "")])
        if "error" in result:
            rows.append([result["benchmark"], "ERROR", "", result["error"]])
        elif result.get("skipped"):
            rows.append([result["benchmark"], "skipped", "", result["skipped"]])
    lines.append(table(["benchmark", "median", "unit", "notes"], rows))
    lines.append("")
    if report["quick"]:
        lines.append("Quick run: smaller sizes, shorter runs and one repeat; the verdicts are only indicative.")
        lines.append("")
    lines.append(table(["goal", "target", "measured", "verdict"],
                       [[g["goal"], g["target"], "{} {}".format(fmt(g["measured"]), g["unit"]) if g["measured"]
                         is not None else "n/a", g["verdict"]] for g in report["goals"]]))
    return "\n".join(lines)


def parseSettings(settings):
    """``name.key=JSON`` overrides, as {name: {key: value}}."""
    out = {}
    for setting in settings:
        target, _, value = setting.partition("=")
        name, _, key = target.partition(".")
        if not key or not value:
            raise SystemExit("--set expects name.key=value, got {!r}".format(setting))
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(name, {})[key] = parsed
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--only", default="", help="comma-separated benchmarks: " + ", ".join(n for n, _ in BENCHMARKS))
    parser.add_argument("--repeats", type=int, help="repeats per measurement (default: 3, quick: 1)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME.KEY=JSON",
                        help="override a benchmark parameter, e.g. fanout.clients=[100,1000]")
    parser.add_argument("--output", help="JSON file to write (default: benchmarks/results/<date>[-quick].json)")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    known = [n for n, _ in BENCHMARKS]
    for name in only:
        if name not in known:
            raise SystemExit("unknown benchmark {!r}; known: {}".format(name, ", ".join(known)))
    overrides = parseSettings(args.set)

    began = time.time()
    results = []
    for name, moduleName in BENCHMARKS:
        if only and name not in only:
            continue
        module = importlib.import_module(moduleName)
        params = dict(module.DEFAULTS)
        if args.quick:
            params["repeats"] = 1
            params.update(module.QUICK)
        if args.repeats is not None:
            params["repeats"] = args.repeats
        params.update(overrides.get(name, {}))
        processes = params.pop("processes", 1)
        timeout = params.pop("timeout", 600)
        sys.stderr.write("== {} ({} process(es)) ...\n".format(name, processes))
        sys.stderr.flush()
        parts = []
        for part in getattr(module, "PARTS", [{}]):
            runs = [runOne(name, moduleName, dict(params, **part), timeout) for _ in range(processes)]
            parts.append(mergeRuns(runs) if processes > 1 else runs[0])
        result = mergeParts(parts)
        if result.get("metrics") and not result.get("skipped"):
            try:
                result["rows"] = module.describe(result)
            except Exception as e:  # a partial result (a part failed)
                result.setdefault("error", "cannot describe the result: {!r}".format(e))
        sys.stderr.write("== {} done in {:.0f} s{}\n".format(
            name, result.get("seconds", 0), ": " + result["error"] if "error" in result else ""))
        results.append(result)

    metrics = {}
    for result in results:
        metrics.update(result.get("metrics", {}))
    now = datetime.datetime.now()
    report = {
        "date": now.strftime("%Y-%m-%d %H:%M"),
        "quick": args.quick,
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks"] + (argv if argv is not None
                                                                                      else sys.argv[1:])),
        "machine": machine(),
        "commit": _commit(),
        "seconds": time.time() - began,
        "results": results,
        "goals": evaluate(metrics),
        "metrics": metrics,
    }
    text = render(report)
    print(text)
    print("\n(total {:.0f} s)".format(report["seconds"]))
    path = args.output or os.path.join(REPO, "benchmarks", "results", "{}{}.json".format(
        now.strftime("%Y-%m-%d"), "-quick" if args.quick else ""))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    report["table"] = text
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=str)
    print("results written to {}".format(os.path.relpath(path)))
    return 1 if any("error" in r for r in results) else 0


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    sys.exit(main())
