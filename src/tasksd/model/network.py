"""Which addresses push dispatch may connect to: the one rule both CreateTask (for URLs naming
an address) and the sender (for every connection it opens) apply.

Link-local addresses and the cloud metadata services (169.254.0.0/16 holds GCP's, AWS's,
Azure's and Oracle's 169.254.169.254; fd00:ec2::254 is AWS's IPv6 one; 100.100.100.200 is
Alibaba's) are never targets: a task must not be able to read the server's cloud credentials.
``allowed_target_networks`` narrows targets further. An IPv4-mapped IPv6 address
(``::ffff:169.254.169.254``) is judged as the IPv4 address it reaches.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NEVER_ALLOWED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # IPv4 link-local, with 169.254.169.254 (metadata of most clouds)
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS instance metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud instance metadata
        "64:ff9b::a9fe:0/112",  # 169.254.0.0/16 through the well-known NAT64 prefix
    )
)

# Numeric IPv4 forms that the C resolver accepts besides dotted quads: 2130706433, 127.1, 0x7f.1.
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TargetNetworks:
    """The rule: never the addresses of ``NEVER_ALLOWED``; when ``allowed`` is set, only its."""

    allowed: tuple[Network, ...] | None = None

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def parse(networks: tuple[str, ...] | None) -> TargetNetworks:
        """The rule for a config's ``allowed_target_networks`` (CIDRs; None: any address).

        Raises: ValueError naming a network that is not one.
        """
        if networks is None:
            return ANY_ADDRESS
        parsed = []
        for network in networks:
            try:
                parsed.append(ipaddress.ip_network(network, strict=False))
            except ValueError:
                raise ValueError(
                    f"allowed_target_networks: {network!r} is not a network (such as 10.0.0.0/8)."
                ) from None
        return TargetNetworks(tuple(parsed))

    def allows(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in NEVER_ALLOWED):
            return False
        return self.allowed is None or any(address in network for network in self.allowed)

    def refusal(self, address: str) -> str | None:
        """Why a connection to ``address`` (an IP address as a socket gives it) is refused;
        None when it is allowed. A string that is no address is refused."""
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return f"The target address {address!r} is not an IP address."
        if self.allows(parsed):
            return None
        return refused_message(address)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (few rules live, each for the server's life)
    def literal_refusal(self, host: str) -> str | None:
        """Why a URL whose host is ``host`` is refused before it is sent: its host is an
        address (in any form a resolver reads as one) that is not allowed. None otherwise,
        host names included: where they lead is checked when the attempt connects."""
        address = literal_address(host)
        if address is None or self.allows(address):
            return None
        written = host.strip("[]")
        if isinstance(address, ipaddress.IPv4Address) and written != str(address):
            written = f"{written} ({address})"  # a legacy form, such as 2852039166
        return refused_message(written)


ANY_ADDRESS = TargetNetworks()
"""The rule without ``allowed_target_networks``: any address but those never allowed."""


def refused_message(address: str) -> str:
    return f"The target address {address} is not allowed by this server."


def literal_address(host: str) -> Address | None:
    """The address a URL's host (as ``urlsplit(...).hostname`` gives it) names, if it is one."""
    host = host.strip("[]").split("%", 1)[0].removesuffix(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
