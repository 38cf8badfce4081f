"""A resolver for tests: names resolve to the addresses given, anything else does not resolve, with no DNS asked
(there is no network here, and a test must not depend on what a real name resolves to)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from services.gateway.public_address import IPAddress


@dataclass
class FakeDns:
    names: dict[str, list[str]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.names[host]]
