"""The HTTP service of ``api`` and ``webhook`` nodes: ``ctx.services["http"]``.

One shared ``httpx.AsyncClient`` (connection pooling across nodes), closed with the
server. Every connection it opens goes through :class:`PolicyBackend`, a network
backend of httpcore that resolves the host itself, checks every address with the
:class:`~server.outbound.policy.OutboundPolicy` and connects to the checked address.
The URL is not rewritten, so the ``Host`` header, TLS SNI and certificate checks stay on
the original name, and pooled connections stay keyed by that name (a connection opened
and verified for one name is never reused for another name on the same address).

Redirects are followed here, by hand (at most ``max_redirects`` hops): each hop is a new
request whose connection passes the policy before it is opened, the body of a redirect
response is never read, and credentials are dropped when a hop leaves the origin.
Response bodies are streamed and refused past ``limits.max_response_bytes``; the whole
exchange (redirects and body included) has one deadline.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from server import __version__
from server.config import Settings
from server.outbound.errors import (
    InvalidDestination,
    OutboundError,
    OutboundTimeout,
    OutboundUnreachable,
    ResponseTooLarge,
    TooManyRedirects,
)
from server.outbound.policy import OutboundPolicy

DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Headers that must not follow a redirect to another origin (plus the caller's own).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
#: Recomputed for every hop's request.
FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})
USER_AGENT = f"Flowyard/{__version__}"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response: status, headers and the whole (size-checked) body."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    encoding: str

    def text(self) -> str:
        return self.content.decode(self.encoding, errors="replace")


def shown_url(url: httpx.URL | str) -> str:
    """A URL fit for messages and logs: no userinfo, no query string, no fragment."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
        port = f":{parsed.port}" if parsed.port is not None else ""
        host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
        return f"{parsed.scheme}://{host}{port}{parsed.path}"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"


class PolicyBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy allows.

    The host is resolved once, every address is checked before any socket is opened,
    and the connection goes to a checked address (each in turn until one answers).
    """

    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self.policy = policy
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.policy.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host!r} took too long") from None
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None  # resolve() never answers an empty list
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound calls never use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


#: httpcore's exceptions as httpx's (what ``httpx.AsyncHTTPTransport`` does, in public API).
_HTTPCORE_TO_HTTPX: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for core, mapped in _HTTPCORE_TO_HTTPX:
            if isinstance(error, core):
                raise mapped(str(error)) from error
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class PolicyTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose connections obey the policy."""

    def __init__(
        self, policy: OutboundPolicy, ssl_context: ssl.SSLContext, max_connections: int = 100
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=PolicyBackend(policy, httpcore.AnyIOBackend()),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class OutboundHTTP:
    """The shared HTTP client of node types, with the destination policy and limits."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        max_response_bytes: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy
        self.max_response_bytes = max_response_bytes
        context = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        self._client = httpx.AsyncClient(
            transport=PolicyTransport(policy, context),
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would bypass the address checks
            headers={"User-Agent": USER_AGENT},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundHTTP:
        """The service for a server: ``[outbound]`` policy, ``limits.max_response_bytes``."""
        outbound = settings.outbound
        return cls(
            OutboundPolicy(outbound.mode, outbound.allow, outbound.deny),
            max_response_bytes=settings.limits.max_response_bytes,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | list[str]] | None = None,
        content: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - also sets httpx's phase timeouts
        follow_redirects: bool = True,
        max_redirects: int = MAX_REDIRECTS,
        sensitive_headers: Iterable[str] = (),
    ) -> HttpResponse:
        """Send one request (following redirects) and read the whole response.

        ``timeout`` bounds the whole exchange. ``sensitive_headers`` are dropped, like
        ``Authorization``, when a redirect leaves the original origin. Raises an
        :class:`~server.outbound.errors.OutboundError` (with ``retryable``) on failure.
        """
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange(
                    method,
                    url,
                    headers=dict(headers or {}),
                    params=params,
                    content=content,
                    seconds=timeout,
                    follow_redirects=follow_redirects,
                    max_redirects=max_redirects,
                    sensitive={*CREDENTIAL_HEADERS, *(h.lower() for h in sensitive_headers)},
                )
        except TimeoutError:
            raise OutboundTimeout(f"{shown_url(url)} did not answer within {timeout:g} s") from None

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: Mapping[str, str | list[str]] | None,
        content: bytes | None,
        seconds: float,
        follow_redirects: bool,
        max_redirects: int,
        sensitive: set[str],
    ) -> HttpResponse:
        target = _check_url(url)
        if params:
            target = target.copy_merge_params(params)  # keep the URL's own query too
        request = self._build(method, target, headers, content, seconds)
        hops = 0
        while True:
            response = await self._send(request)
            location = response.headers.get("location")
            if not (follow_redirects and response.status_code in REDIRECT_STATUSES and location):
                return await self._read(response)
            await response.aclose()  # a redirect's body is never read
            if hops >= max_redirects:
                raise TooManyRedirects(
                    f"{shown_url(url)} redirected more than {max_redirects} times"
                )
            hops += 1
            request = self._redirect(request, response.status_code, location, sensitive, seconds)

    def _build(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: float,
    ) -> httpx.Request:
        try:
            return self._client.build_request(
                method,
                url,
                headers=headers,
                content=content,
                timeout=httpx.Timeout(timeout),
            )
        except (httpx.InvalidURL, httpx.LocalProtocolError, ValueError, TypeError) as error:
            raise InvalidDestination(f"cannot build the request: {error}") from None

    def _redirect(
        self,
        previous: httpx.Request,
        status: int,
        location: str,
        sensitive: set[str],
        timeout: float,
    ) -> httpx.Request:
        try:
            target = previous.url.join(location)
        except (httpx.InvalidURL, ValueError):
            raise InvalidDestination(
                f"{shown_url(previous.url)} redirected to an invalid location"
            ) from None
        target = _check_url(target, redirect_from=previous.url)
        method = previous.method
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method = "GET"
        keep_body = method == previous.method
        same_origin = (target.scheme, target.host, target.port) == (
            previous.url.scheme,
            previous.url.host,
            previous.url.port,
        )
        headers = {
            name: value
            for name, value in previous.headers.items()
            if name.lower() not in FRAMING_HEADERS
            and (keep_body or name.lower() != "content-type")
            and (same_origin or name.lower() not in sensitive)
        }
        return self._build(
            method,
            target,
            headers,
            previous.content if keep_body else None,
            timeout,
        )

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._client.send(request, stream=True)
        except OutboundError:
            raise
        except httpx.TimeoutException:
            raise OutboundTimeout(f"{shown_url(request.url)} did not answer in time") from None
        except httpx.UnsupportedProtocol as error:
            raise InvalidDestination(f"{shown_url(request.url)}: {error}") from None
        except httpx.HTTPError as error:
            raise OutboundUnreachable(
                f"{shown_url(request.url)} could not be reached: {_reason(error)}"
            ) from None

    async def _read(self, response: httpx.Response) -> HttpResponse:
        """The whole body, refused past ``max_response_bytes`` (declared or streamed)."""
        limit = self.max_response_bytes
        url = response.request.url
        try:
            declared = response.headers.get("content-length")
            has_body = response.request.method != "HEAD"  # a HEAD answer declares, sends none
            if has_body and declared is not None and declared.isdigit() and int(declared) > limit:
                raise self._too_large(url, f" (it declares {int(declared)} bytes)")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise self._too_large(url, "")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise OutboundTimeout(f"{shown_url(url)} stopped sending its response") from None
        except httpx.HTTPError as error:
            raise OutboundUnreachable(
                f"reading the response of {shown_url(url)} failed: {_reason(error)}"
            ) from None
        finally:
            await response.aclose()
        return HttpResponse(
            status_code=response.status_code,
            headers=response.headers,
            content=b"".join(chunks),
            url=str(url),
            encoding=response.charset_encoding or "utf-8",
        )

    def _too_large(self, url: httpx.URL, declared: str) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"the response body of {shown_url(url)} is larger than "
            f"limits.max_response_bytes ({self.max_response_bytes} bytes){declared}"
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def _check_url(url: str | httpx.URL, *, redirect_from: httpx.URL | None = None) -> httpx.URL:
    """An absolute http(s) URL with a host, or :class:`InvalidDestination`."""
    where = f"{shown_url(redirect_from)} redirected to" if redirect_from is not None else "the URL"
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise InvalidDestination(f"{where} is not a valid URL: {error}") from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "none"
        raise InvalidDestination(f"{where} has scheme {scheme!r}; only http and https are called")
    if not parsed.host:
        raise InvalidDestination(f"{where} has no host; write e.g. https://host/path")
    return parsed


def _reason(error: httpx.HTTPError) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
