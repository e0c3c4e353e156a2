"""
One client connection to a server factory over a L{StringTransport}: what
the tests of the twistd plugins use to see the replies their options make.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from zope.interface import directlyProvides


class MemoryClient:
    """
    One connection to a factory over a L{StringTransport}.
    """

    def __init__(
        self,
        factory: Factory,
        port: int,
        peer: str = "192.0.2.1",
        tls: bool = False,
    ) -> None:
        """
        @param factory: the server's factory.
        @param port: the server's port, as the transport reports it.
        @param peer: the client's address.
        @param tls: whether the transport claims to be TLS.
        """
        protocol = factory.buildProtocol(IPv4Address("TCP", peer, 40000))
        assert isinstance(protocol, Protocol)
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", port),
            peerAddress=IPv4Address("TCP", peer, 40000),
        )
        if tls:
            directlyProvides(self.transport, ISSLTransport)
        protocol.makeConnection(self.transport)
        self.protocol = protocol

    def read(self) -> bytes:
        """
        Everything the server wrote since the last read.
        """
        data = self.transport.value()
        self.transport.clear()
        return data

    def send(self, data: bytes) -> bytes:
        """
        Send C{data}, return the server's answer.
        """
        self.protocol.dataReceived(data)
        return self.read()
