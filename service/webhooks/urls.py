"""The SSRF guard: a webhook is not a way into the service's own network.

A URL must be http(s) and every address its host resolves to must be public: not loopback,
private, link-local (cloud metadata: 169.254.169.254), unique-local (fd00:ec2::254),
multicast, unspecified or otherwise reserved, unless the host or address is allow-listed
(`NNS_WEBHOOK_ALLOW_HOSTS`). Delivery resolves once, checks, and connects to the checked
address, so a name that re-resolves elsewhere (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class UnsafeURL(ValueError):
    """The URL may not be called; the message says why (shown to its owner)."""


class Unresolvable(UnsafeURL):
    """The host does not resolve (now): refused at delivery, tolerated at registration."""


@dataclass(frozen=True)
class Target:
    """Where to connect: the checked address, and the name for Host and SNI."""

    url: httpx.URL
    address: str


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts: set[str] = set()
        networks: list[Network] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        return host in self.hosts or any(address in net for net in self.networks)


def blocked(address: IPAddress) -> bool:
    """True for every address that is not plainly on the public internet."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return blocked(address.ipv4_mapped)
    return address in METADATA or address.is_multicast or not address.is_global


def parse(url: str) -> httpx.URL:
    """The URL's shape: http(s), a host, no user info."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURL("the scheme must be http or https")
    if not parsed.host:
        raise UnsafeURL("the URL has no host")
    if parsed.userinfo:
        raise UnsafeURL("credentials in the URL are not accepted; the signature authenticates")
    return parsed


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:  # IDNA: a label over 63 characters can never resolve
        raise UnsafeURL(
            f"the host name {host[:80]} is not valid (a label over 63 characters)"
        ) from None
    except OSError as exc:
        raise Unresolvable(f"the host {host} does not resolve: {exc}") from None
    # sockaddr[0] of AF_INET6 may carry a zone (fe80::1%eth0): drop it, the check still holds.
    return list(dict.fromkeys(ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos))


def check(url: str, allow: AllowList) -> Target:
    """Resolve the URL's host once; refuse it if any address is not allowed."""
    parsed = parse(url)
    host = parsed.host.lower().rstrip(".")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = resolve(host, port)
    if not addresses:
        raise Unresolvable(f"the host {host} does not resolve")
    for address in addresses:
        if blocked(address) and not allow.allows(host, address):
            raise UnsafeURL(
                f"{host} resolves to {address}, a loopback, private, link-local or otherwise "
                "non-public address; webhooks may only call public addresses"
            )
    return Target(url=parsed, address=str(addresses[0]))
