"""
Component lookup by ``type`` name.

Built-in components are listed here by import path and loaded on first use.  Third-party
packages add their own through entry points, without editing stellarflow::

    # setup.cfg of the other package
    [options.entry_points]
    stellarflow.consumers =
        SaveToKafka = mypkg.kafka:SaveToKafka

The groups are ``stellarflow.sources``, ``stellarflow.processors`` and ``stellarflow.consumers``.
A component is a class providing L{stellarflow.interfaces.IComponentFactory} whose instances
provide the role's interface.
"""

from importlib import import_module
from importlib.metadata import entry_points

from stellarflow.interfaces import IConsumer, IProcessor, ISource

ROLES = {
    "source": ("stellarflow.sources", ISource),
    "processor": ("stellarflow.processors", IProcessor),
    "consumer": ("stellarflow.consumers", IConsumer),
}

BUILTIN = {
    "source": {
        "RPCSourceAdapter": "stellarflow.rpc.source:RPCSourceAdapter",
        "DataLakeSourceAdapter": "stellarflow.ledgers.lakesource:DataLakeSourceAdapter",
        "MemorySource": "stellarflow.testing.memory:MemorySource",
        "RedisStreamSource": "stellarflow.redis.source:RedisStreamSource",
    },
    "processor": {
        "GetEventsRPC": "stellarflow.events.processor:GetEventsRPC",
        "GetLedgersRPC": "stellarflow.ledgers.processor:GetLedgersRPC",
    },
    "consumer": {
        "SaveToWebSocket": "stellarflow.websocket.consumer:SaveToWebSocket",
        "SaveToPostgreSQL": "stellarflow.postgres.consumer:SaveToPostgreSQL",
        "SaveToRedis": "stellarflow.redis.consumer:SaveToRedis",
        "MemoryConsumer": "stellarflow.testing.memory:MemoryConsumer",
        "DurableMemoryConsumer": "stellarflow.testing.memory:DurableMemoryConsumer",
    },
}


class UnknownComponent(LookupError):
    """
    No component of that role has that name.
    """


def _importPath(path):
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


class Registry:
    """
    Maps ``(role, type name)`` to component classes.

    @param extra: optional C{{role: {name: class or "module:attr"}}} added on top of the
        built-ins and entry points (tests use it).
    @param useEntryPoints: whether installed packages' entry points are consulted.
    """

    def __init__(self, extra=None, useEntryPoints=True):
        self._paths = {role: dict(names) for role, names in BUILTIN.items()}
        if useEntryPoints:
            for role, (group, _) in ROLES.items():
                for ep in entry_points(group=group):
                    self._paths[role].setdefault(ep.name, ep.value)
        for role, names in (extra or {}).items():
            self._paths[role].update(names)

    def names(self, role):
        """
        Every known type name for C{role}, sorted.
        """
        return sorted(self._paths[role])

    def lookup(self, role, name):
        """
        Return the component class for C{name}; raise L{UnknownComponent} or ImportError.
        """
        try:
            target = self._paths[role][name]
        except KeyError:
            raise UnknownComponent(name) from None
        if isinstance(target, str):
            target = _importPath(target)
            self._paths[role][name] = target
        return target
