"""
Serving the test Stellar RPC server over HTTP, on ports that ``refuse`` faults close and reopen.

L{serve} listens and registers the port with the resource's L{Listeners}, which the resource
uses to stop listening, drop every open connection and listen again on the same port number.
"""

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint, serverFromString
from twisted.protocols.policies import WrappingFactory
from twisted.web.server import Site


class Listener:
    """
    A port the resource is served on, which can stop listening and listen again.

    Stops and starts run one after the other; each call returns its own Deferred.

    @param port: the listening port.
    @param factory: the factory to listen with again.
    @param reactor: listen again with C{TCP4ServerEndpoint} on this reactor, on the port number
        the first listen got; C{None}: use C{endpoint} again.
    @param endpoint: the C{IStreamServerEndpoint} of the first listen.
    """

    def __init__(self, port, factory, reactor, endpoint):
        self.port = port
        self.factory = factory
        self.reactor = reactor
        self.endpoint = endpoint
        host = port.getHost()
        self.number = host.port
        self.interface = host.host
        self._ops = succeed(None)

    def _enqueue(self, operation):
        result = Deferred()

        def run(_):
            d = maybeDeferred(operation)
            d.addCallbacks(result.callback, result.errback)
            return d

        self._ops.addCallback(run)
        return result

    def stop(self):
        """
        Stop listening; a Deferred that fires once the port is closed.
        """
        return self._enqueue(self._stop)

    def start(self):
        """
        Listen again; a Deferred that fires with the port.
        """
        return self._enqueue(self._start)

    def _stop(self):
        if self.port is None:
            return None
        port, self.port = self.port, None
        return port.stopListening()

    def _start(self):
        if self.port is not None:
            return self.port
        if self.reactor is not None:
            endpoint = TCP4ServerEndpoint(self.reactor, self.number, interface=self.interface)
        else:
            endpoint = self.endpoint
        return endpoint.listen(self.factory).addCallback(self._listening)

    def _listening(self, port):
        self.port = port
        self.number = port.getHost().port
        return port


class Listeners:
    """
    Every L{Listener} a resource is served on, with the connections made to it.
    """

    def __init__(self):
        self._listeners = []
        self._wrappers = []

    def add(self, listener, wrapper):
        """
        Register C{listener}, whose connections C{wrapper} (a L{WrappingFactory}) tracks.
        """
        self._listeners.append(listener)
        self._wrappers.append(wrapper)

    def stop(self):
        """
        Stop listening everywhere; a Deferred that fires once every port is closed.
        """
        return DeferredList([listener.stop() for listener in self._listeners])

    def start(self):
        """
        Listen again everywhere; a Deferred that fires once every port listens (or fails with
        the first that cannot).
        """
        starts = [listener.start() for listener in self._listeners]
        return DeferredList(starts, fireOnOneErrback=True, consumeErrors=True)

    def dropConnections(self):
        """
        Abort every open connection.
        """
        for wrapper in self._wrappers:
            for protocol in list(wrapper.protocols):
                if protocol.transport is not None:
                    protocol.transport.abortConnection()


def serve(endpointOrPort, resource, reactor=None, interface="127.0.0.1"):
    """
    Serve C{resource} over HTTP; a Deferred that fires with the port number.

    @param endpointOrPort: a port number (0 picks a free one; needs C{reactor}), an endpoint
        description string (needs C{reactor}) or an C{IStreamServerEndpoint}.  With a reactor,
        ``refuse`` faults reopen the same port number.
    @param resource: a resource with C{listeners} (L{Listeners}), such as
        L{stellarflow.testing.rpcresource.StellarRPCResource}.
    """
    site = Site(resource)
    wrapper = WrappingFactory(site)
    if isinstance(endpointOrPort, int):
        if reactor is None:
            raise TypeError("serve() needs a reactor to listen on a port number")
        endpoint = TCP4ServerEndpoint(reactor, endpointOrPort, interface=interface)
    elif isinstance(endpointOrPort, str):
        if reactor is None:
            raise TypeError("serve() needs a reactor to parse an endpoint description")
        endpoint = serverFromString(reactor, endpointOrPort)
    else:
        endpoint = endpointOrPort

    def listening(port):
        listener = Listener(port, wrapper, reactor, endpoint)
        resource.listeners.add(listener, wrapper)
        return listener.number

    return endpoint.listen(wrapper).addCallback(listening)
