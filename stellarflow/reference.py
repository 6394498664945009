"""
The configuration reference, generated from the components' schemas so it cannot drift.

``python -m stellarflow.reference > docs/configuration.md`` rewrites it; a test checks the file
is current.
"""

import sys

from stellarflow.registry import BUILTIN, Registry
from stellarflow.schema import Schema

HEADER = """# Configuration reference

Generated from the code by `python -m stellarflow.reference` (a test keeps it current).
Types are what the validator expects; numbers may also be written as strings (`port: "8080"`).
Strings may use `${VAR}` / `${VAR:-default}` from the environment. Secrets (marked *secret*)
are never logged or echoed in error messages.

See `pipeline.md` for the file's forms and the delivery contract, `websocket.md` for the
WebSocket protocol, `source.md` for the RPC source, `postgresql.md` for storage.
"""

#: public components documented here (the in-memory ones are for tests)
DOCUMENTED = {
    "source": ["RPCSourceAdapter", "DataLakeSourceAdapter", "RedisStreamSource"],
    "processor": ["GetEventsRPC", "GetLedgersRPC"],
    "consumer": ["SaveToWebSocket", "SaveToPostgreSQL", "SaveToRedis"],
}


def _default(field):
    if field.required:
        return "required"
    value = field.default
    if value == "" or value is None:
        return "(empty)"
    if isinstance(value, (list, dict)) and not value:
        return "`{}`".format("[]" if isinstance(value, list) else "{}")
    return "`{}`".format(value)


def table(schema, prefix=""):
    """
    Markdown rows for C{schema}, nested schemas flattened with dotted keys.
    """
    rows = []
    for name, field in schema.fields.items():
        key = prefix + name
        kind = field.kind
        expected = kind.expected
        if getattr(kind, "secret", False):
            expected += " (*secret*)"
        rows.append("| `{}` | {} | {} | {} |".format(key, expected, _default(field), field.doc.replace("|", "\\|")))
        if isinstance(kind, Schema):
            rows.extend(table(kind, key + "."))
    return rows


def render(registry=None):
    from stellarflow.admin import adminSchema

    registry = registry or Registry(useEntryPoints=False)
    out = [HEADER]
    out.append("## Top level\n")
    out.append("| key | type | default | meaning |\n|---|---|---|---|")
    out.append("| `pipelines` | a mapping of pipeline names to pipelines | - | the full form |")
    out.append("| `source`, `processors`, `consumers`, `max_in_flight` | as in a pipeline | - | the short form: one pipeline named `default` |")
    out.append("| `state_dir` | a non-empty string | `stellarflow-state` | checkpoint files, relative to the working directory |")
    out.append("| `admin` | a mapping (below) | off | the HTTP admin endpoint (`/healthz`, `/metrics`) |")
    out.append("\n## Pipeline\n")
    out.append("| key | type | default | meaning |\n|---|---|---|---|")
    out.append("| `source` | `{type, config}` | `RPCSourceAdapter` with its defaults | where events come from |")
    out.append("| `processors` | list of `{type, config}` | `[GetEventsRPC]` | turn source items into messages |")
    out.append("| `consumers` | non-empty list of `{type, config}` | required | where messages go |")
    out.append("| `max_in_flight` | an integer from 1 to 1000 | `8` | unacknowledged batches per consumer before the source pauses |")
    out.append("\n## `admin`\n")
    out.append("| key | type | default | meaning |\n|---|---|---|---|")
    out.extend(table(adminSchema))
    for role, names in DOCUMENTED.items():
        for name in names:
            if name not in BUILTIN[role]:
                continue
            factory = registry.lookup(role, name)
            schema = factory.configSchema
            out.append("\n## {} `{}`\n".format(role.capitalize(), name))
            if schema.doc:
                out.append(schema.doc + "\n")
            out.append("| key | type | default | meaning |\n|---|---|---|---|")
            out.extend(table(schema))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
