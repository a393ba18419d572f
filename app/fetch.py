"""Fetch an image from a client-supplied URL without letting the client reach our network.

The host is resolved once and every address checked (loopback, private, link-local,
multicast, reserved and unspecified ranges are refused unless OCR_URL_ALLOWLIST names
them); the connection then goes to the checked address itself, so a second DNS answer
cannot point it elsewhere (DNS rebinding). Each redirect is checked the same way, and
reading stops at the upload limit.

OCR_URL_TIMEOUT bounds the whole fetch, redirects included: connecting gets the time left,
and a watchdog shuts the socket down at the deadline, so a server dripping its headers or
body a byte at a time cannot hold a worker (a socket timeout alone is per recv()).
Non-ASCII in the path or query is percent-encoded, and a non-ASCII host name goes out in
IDNA form.
"""

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import quote, urljoin, urlsplit

from django.conf import settings

from app.errors import InvalidInput, TooLarge

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
# Characters left as they are in a path or query: RFC 3986's reserved and unreserved ones,
# and "%" so that an already-encoded URL is not encoded twice.
URL_SAFE = "/?#[]@!$&'()*+,;=:-._~%"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def fetch(url: str) -> tuple[bytes, str]:
    """Return the body at `url` and a file name taken from its path."""
    deadline = time.monotonic() + settings.OCR_URL_TIMEOUT
    for _ in range(MAX_REDIRECTS + 1):
        parts = _parse(url)
        address = _checked_address(parts.hostname, parts.port or _default_port(parts.scheme))
        connection = _connection(parts, address, deadline)
        watchdog = _Watchdog(connection, deadline)
        try:
            response = _get(connection, parts, watchdog)
            if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                url = urljoin(url, response.getheader("Location"))
                continue
            if response.status != 200:
                raise InvalidInput(f"The image URL answered HTTP {response.status}.", code="url_fetch_failed")
            return _read_limited(response, watchdog), parts.path.rsplit("/", 1)[-1]
        finally:
            watchdog.cancel()
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
    try:
        _ascii_host(parts.hostname)
    except UnicodeError as exc:
        raise InvalidInput(
            f"The image URL's host {parts.hostname!r} is not a valid name.", code="invalid_url"
        ) from exc
    return parts


def _ascii_host(hostname: str) -> str:
    """The host as it goes on the wire: IDNA for a non-ASCII name (UnicodeError if invalid)."""
    return hostname if hostname.isascii() else hostname.encode("idna").decode("ascii")


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
        self.raw_sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(self.raw_sock, server_hostname=self._hostname)


class _Watchdog:
    """Shuts the socket down when the deadline passes, whatever read is waiting on it."""

    def __init__(self, connection: http.client.HTTPConnection, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._connection = connection
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        # The plain socket's shutdown, also under TLS (and during its handshake): the read
        # in the other thread then sees the end of the stream, and the TLS object is left to
        # that thread alone.
        sock = getattr(self._connection, "raw_sock", None) or self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def check(self) -> None:
        if self.expired or time.monotonic() > self.deadline:
            raise InvalidInput("The image URL took too long to answer.", code="url_fetch_failed")

    def cancel(self) -> None:
        self._timer.cancel()


def _connection(parts, address: str, deadline: float) -> http.client.HTTPConnection:
    port = parts.port or _default_port(parts.scheme)
    timeout = max(0.1, deadline - time.monotonic())
    if parts.scheme == "https":
        connection = _PinnedHTTPSConnection(address, _ascii_host(parts.hostname), port=port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    return connection


def _get(connection: http.client.HTTPConnection, parts, watchdog: _Watchdog) -> http.client.HTTPResponse:
    path = quote(parts.path or "/", safe=URL_SAFE) + (
        f"?{quote(parts.query, safe=URL_SAFE)}" if parts.query else ""
    )
    host = _ascii_host(parts.hostname)
    host = f"[{host}]" if ":" in host else host
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    try:
        connection.connect()  # under the watchdog: a TLS handshake can drip too
        connection.request(
            "GET", path, headers={"Host": host_header, "User-Agent": "onlineocr", "Accept": "image/*"}
        )
        return connection.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        watchdog.check()
        raise InvalidInput(f"The image URL could not be fetched ({exc}).", code="url_fetch_failed") from exc


def _read_limited(response: http.client.HTTPResponse, watchdog: _Watchdog) -> bytes:
    limit = settings.OCR_MAX_UPLOAD_BYTES
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"The image at the URL is {declared} bytes; the limit is {limit}.", code="file_too_large"
        )
    chunks, size = [], 0
    try:
        while chunk := response.read1(CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(
                    f"The image at the URL is over the limit of {limit} bytes.", code="file_too_large"
                )
            watchdog.check()
            chunks.append(chunk)
    except (OSError, http.client.HTTPException) as exc:
        watchdog.check()
        raise InvalidInput(f"The image URL could not be read ({exc}).", code="url_fetch_failed") from exc
    watchdog.check()  # the watchdog's shutdown ends the stream: a short body is not the image
    return b"".join(chunks)
