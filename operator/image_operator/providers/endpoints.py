"""Where the operator may send a provider's requests (and so its credentials): the endpoint guard.

An `ImageProvider` is written by whoever may create objects in a namespace, but its requests
leave from the operator's pod. Without a guard, `spec.endpoint: http://169.254.169.254/` makes
the operator send the provider's token to the node's cloud metadata service, and the probe's
error message reads back what answered. So before any request, the endpoint's host, and every
address it resolves to, is judged:

- refused always (unless the operator's administrator allows it): metadata host names, and
  addresses that are unspecified, loopback, link-local (where every cloud's metadata service
  lives), a known metadata service outside link-local, multicast or reserved;
- accepted by default: public addresses and the private ranges (RFC 1918 `10/8`,
  `172.16/12`, `192.168/16`, carrier-grade NAT `100.64/10`, IPv6 ULA `fc00::/7`), because
  private clouds (ucloudstack, openstack) live there. An administrator who runs no private
  cloud can refuse them with `deniedEndpointCidrs`.

`allowedEndpointCidrs` and `allowedEndpointHosts` (settings) accept what would be refused: the
local tests and the demo allow `127.0.0.0/8`, where the emulator listens.

A name is resolved here, and again when the client connects: a name that changes its answer in
between (DNS rebinding) is caught at the next check (every probe re-checks), not at that
connection. Clients that can check each request (`guard_url`, `GuardedAdapter`) do.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from image_operator.providers.errors import InvalidInput, Transient
from image_operator.providers.ratelimit import TokenBucket

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: host name -> the addresses it resolves to (a seam: unit tests give one without DNS).
Resolver = Callable[[str], list[str]]


_SETTINGS_HINT = (
    "if it really is the cloud's API, the operator's administrator can allow it with the "
    "setting allowedEndpointCidrs or allowedEndpointHosts (IMAGE_OPERATOR_ALLOWED_ENDPOINT_CIDRS, "
    "IMAGE_OPERATOR_ALLOWED_ENDPOINT_HOSTS; docs/configuration.md)"
)
_ACCEPTED = (
    "a public address or a private one (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
    "100.64.0.0/10, fc00::/7)"
)


def _networks(*cidrs: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


#: What is refused by default, by category (the first match names the refusal).
REFUSED_RANGES: tuple[tuple[str, tuple[Network, ...]], ...] = (
    # Metadata services outside link-local: Alibaba Cloud, AWS over IPv6, Azure's WireServer.
    (
        "cloud metadata service",
        _networks("100.100.100.200/32", "fd00:ec2::254/128", "168.63.129.16/32"),
    ),
    ("link-local (cloud metadata services live there)", _networks("169.254.0.0/16", "fe80::/10")),
    ("unspecified", _networks("0.0.0.0/8", "::/128")),
    ("loopback", _networks("127.0.0.0/8", "::1/128")),
    ("multicast", _networks("224.0.0.0/4", "ff00::/8")),
    # 240/4 (255.255.255.255 included) and IPv4-compatible IPv6, deprecated since 2006.
    ("reserved", _networks("240.0.0.0/4", "::/96")),
)
#: Names that reach a metadata service from inside a cloud VM, whatever they resolve to here.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: How long a host other than the endpoint's stays accepted before it is judged (resolved) again.
RECHECK_SECONDS = 60.0


class EndpointRefused(InvalidInput):
    """The endpoint's host is one the operator never sends requests to (see the module)."""

    reason = "EndpointRefused"


def system_resolver(host: str) -> list[str]:
    """Every address `host` resolves to (what the HTTP clients will connect to)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def origin(url: str) -> str:
    """`scheme://host[:port]` of `url`: what messages show (no user info, path or query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


def _normal_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


def literal_address(host: str) -> Address | None:
    """The address `host` spells, in any form a resolver accepts for an IPv4 literal too
    (`2852039166`, `0xa9.0xfe.0xa9.0xfe`, `0251.0376.0251.0376`, `169.254.43518`)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        # inet_aton parses the historical forms getaddrinfo accepts, without any lookup.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _embedded_ipv4(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::`)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


@dataclass(frozen=True)
class EndpointPolicy:
    """Which endpoint hosts are acceptable. The default instance is the strict default."""

    allowed_cidrs: tuple[Network, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    denied_cidrs: tuple[Network, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False, repr=False)

    @classmethod
    def from_lists(
        cls,
        *,
        allowed_cidrs: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
        denied_cidrs: Iterable[str] = (),
        resolver: Resolver = system_resolver,
    ) -> EndpointPolicy:
        return cls(
            allowed_cidrs=tuple(ipaddress.ip_network(c, strict=False) for c in allowed_cidrs),
            allowed_hosts=frozenset(_normal_host(h) for h in allowed_hosts if h.strip()),
            denied_cidrs=tuple(ipaddress.ip_network(c, strict=False) for c in denied_cidrs),
            resolver=resolver,
        )

    def refusal(self, address: Address) -> str | None:
        """Why `address` is refused (its category), or None when it is acceptable."""
        for candidate in {address, _embedded_ipv4(address)}:
            if any(candidate in net for net in self.allowed_cidrs):
                return None
        for candidate in {address, _embedded_ipv4(address)}:
            for category, networks in REFUSED_RANGES:
                if any(candidate in net for net in networks):
                    return category
            if any(candidate in net for net in self.denied_cidrs):
                return "denied by the operator's deniedEndpointCidrs"
        return None

    def check(self, url: str, *, field: str = "spec.endpoint") -> None:
        """Raise `EndpointRefused` (or `Transient` when the name does not resolve now) unless
        requests to `url` are acceptable. Sends nothing to the host."""
        host = host_of(url)
        shown = origin(url)
        if not host:
            raise InvalidInput(f"{field} {shown!r} has no host")
        if host in self.allowed_hosts:
            return
        if host in METADATA_HOSTS:
            raise EndpointRefused(
                f"{field} {shown!r} names {host!r}, a cloud metadata service: the operator "
                f"never sends a provider's requests there; use the cloud API's address "
                f"({_ACCEPTED}); {_SETTINGS_HINT}"
            )
        literal = literal_address(host)
        if literal is not None:
            addresses: list[Address] = [literal]
        else:
            addresses = self._resolve(host, field, shown)
        for address in addresses:
            category = self.refusal(address)
            if category is not None:
                verb = "is" if literal is not None else "resolves to"
                raise EndpointRefused(
                    f"{field} {shown!r} is refused: its host {verb} {address}, a {category} "
                    f"address, where the operator never sends a provider's requests; use the "
                    f"cloud API's address ({_ACCEPTED}); {_SETTINGS_HINT}"
                )

    def _resolve(self, host: str, field: str, shown: str) -> list[Address]:
        try:
            answers = self.resolver(host)
        except (OSError, UnicodeError) as exc:
            raise Transient(
                f"{field} {shown!r}: the host {host!r} does not resolve now "
                f"({type(exc).__name__}); it is checked again before any request"
            ) from None
        addresses = [a for a in (literal_address(answer) for answer in answers) if a is not None]
        if not addresses:
            raise Transient(f"{field} {shown!r}: the host {host!r} resolves to no address now")
        return addresses


def host_of(url: str) -> str:
    """The host of `url` as compared here: lowercase, no trailing dot, no brackets."""
    return _normal_host(urlsplit(url).hostname or "")


@dataclass(frozen=True)
class HostGuard:
    """What one provider's clients may reach, checked for every request they send. The
    provider's own endpoint hosts (`hosts`, judged by the factory and at each probe) always;
    another host only when the provider needs others (`others`: a registry's token realm, a
    Keystone catalog's image endpoint) and the policy accepts it. Without `others`, a
    provider's requests and credentials go nowhere else, redirects included."""

    policy: EndpointPolicy
    hosts: frozenset[str]
    others: bool = False
    # Other hosts accepted lately (host -> when): a catalog's image endpoint is not resolved
    # again for each of its requests, but is judged again after `RECHECK_SECONDS`.
    _accepted: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_endpoint(
        cls, policy: EndpointPolicy, endpoint: str, *, others: bool = False
    ) -> HostGuard:
        return cls(policy, frozenset({host_of(endpoint)}), others)

    def check(self, url: str, *, field: str = "spec.endpoint") -> None:
        host = host_of(url)
        if host in self.hosts:
            return
        if not self.others:
            raise EndpointRefused(
                f"a request to {origin(url)!r} was stopped: this provider sends its requests "
                f"and credentials only to the host of {field} ({', '.join(sorted(self.hosts))}), "
                "and follows no redirect to another host"
            )
        now = time.monotonic()
        if now - self._accepted.get(host, -RECHECK_SECONDS) < RECHECK_SECONDS:
            return
        self.policy.check(url, field=f"a request of this provider (to a host other than {field})")
        self._accepted[host] = now


class GuardedAdapter(HTTPAdapter):
    """A `requests` transport adapter that lets a request out only if its `HostGuard` accepts
    the URL, and (with a `limiter`) only when the rate limit allows. Mounted on the sessions of
    the SDKs that speak `requests` (UCloud's, keystoneauth), it sees every request they make:
    each hop of a redirect, token and discovery requests included."""

    def __init__(self, guard: HostGuard, *, limiter: TokenBucket | None = None) -> None:
        super().__init__()
        self.guard = guard
        self.limiter = limiter

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.guard.check(str(request.url))
        if self.limiter is not None:
            self.limiter.acquire()
        return super().send(request, *args, **kwargs)

    def mount_on(self, session: requests.Session) -> None:
        for prefix in ("http://", "https://"):
            session.mount(prefix, self)
