"""Fetch an image from a client-supplied URL without letting the client reach our network.

The host is resolved once and every address checked (loopback, private, link-local,
multicast, reserved and unspecified ranges are refused unless OCR_URL_ALLOWLIST names
them); the connection then goes to the checked address itself, so a second DNS answer
cannot point it elsewhere (DNS rebinding). Each redirect is checked the same way, and
reading stops at the upload limit.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from urllib.parse import urljoin, urlsplit

from django.conf import settings

from app.errors import InvalidInput, TooLarge

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def fetch(url: str) -> tuple[bytes, str]:
    """Return the body at `url` and a file name taken from its path."""
    deadline = time.monotonic() + settings.OCR_URL_TIMEOUT
    for _ in range(MAX_REDIRECTS + 1):
        parts = _parse(url)
        address = _checked_address(parts.hostname, parts.port or _default_port(parts.scheme))
        response, connection = _get(parts, address, deadline)
        try:
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                url = urljoin(url, response.getheader("Location"))
                continue
            if response.status != 200:
                raise InvalidInput(f"The image URL answered HTTP {response.status}.", code="url_fetch_failed")
            return _read_limited(response, deadline), parts.path.rsplit("/", 1)[-1]
        finally:
            connection.close()
    raise InvalidInput(f"The image URL redirected more than {MAX_REDIRECTS} times.", code="url_fetch_failed")


def _parse(url: str):
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise InvalidInput(f"The image URL is malformed ({exc}).", code="invalid_url") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "The image URL must be an http:// or https:// URL with a host.", code="invalid_url"
        )
    if parts.username or parts.password:
        raise InvalidInput("The image URL must not carry credentials.", code="invalid_url")
    return parts


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _checked_address(host: str, port: int) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(
            f"The image URL's host {host!r} does not resolve.", code="url_fetch_failed"
        ) from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = [address for address in addresses if not is_public(address)]
    if refused:
        raise InvalidInput(
            f"The image URL's host {host!r} resolves to {refused[0]}, an address this service "
            "does not fetch from (loopback, private, link-local, multicast or reserved).",
            code="url_not_allowed",
        )
    return str(addresses[0])


def is_public(address: IPAddress) -> bool:
    if any(address in network for network in _allowlist()):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _allowlist() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in settings.OCR_URL_ALLOWLIST]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with SNI and certificate checks for the URL's host name."""

    def __init__(self, address: str, hostname: str, **kwargs) -> None:
        super().__init__(address, context=ssl.create_default_context(), **kwargs)
        self._hostname = hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._hostname)


def _get(parts, address: str, deadline: float):
    port = parts.port or _default_port(parts.scheme)
    timeout = max(0.1, deadline - time.monotonic())
    if parts.scheme == "https":
        connection = _PinnedHTTPSConnection(address, parts.hostname, port=port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    try:
        connection.request(
            "GET", path, headers={"Host": host_header, "User-Agent": "onlineocr", "Accept": "image/*"}
        )
        return connection.getresponse(), connection
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        raise InvalidInput(f"The image URL could not be fetched ({exc}).", code="url_fetch_failed") from exc


def _read_limited(response: http.client.HTTPResponse, deadline: float) -> bytes:
    limit = settings.OCR_MAX_UPLOAD_BYTES
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"The image at the URL is {declared} bytes; the limit is {limit}.", code="file_too_large"
        )
    chunks, size = [], 0
    try:
        while chunk := response.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(
                    f"The image at the URL is over the limit of {limit} bytes.", code="file_too_large"
                )
            if time.monotonic() > deadline:
                raise InvalidInput("The image URL took too long to answer.", code="url_fetch_failed")
            chunks.append(chunk)
    except (OSError, http.client.HTTPException) as exc:
        raise InvalidInput(f"The image URL could not be read ({exc}).", code="url_fetch_failed") from exc
    return b"".join(chunks)
