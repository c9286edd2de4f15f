"""A real HTTP/1.1 server on a loopback address, for tests of outbound calls.

``asyncio.start_server`` on a random port; it records every request (method, target,
headers, body) and answers with what the test scripts: a status, headers and a body, a
streamed (chunked) body, a redirect, or nothing until an event is set (a peer that
hangs, for timeouts). It speaks just enough HTTP/1.1 for httpx: Content-Length and
chunked request bodies, keep-alive connections.

    async with HttpPeer() as peer:
        peer.script(Reply(503), Reply(200, json={"ok": True}))
        ... call peer.url("/path") ...
        assert peer.requests[0].headers["idempotency-key"] == ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Recorded:
    """One request as the peer received it."""

    method: str
    target: str
    header_list: list[tuple[str, str]]
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names (the last value of a repeated header)."""
        return {name.lower(): value for name, value in self.header_list}

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What the peer answers: ``json`` or ``body``; ``chunks`` streams a chunked body;
    ``hold`` delays the answer until the event is set (never set: the peer hangs)."""

    status: int = 200
    json: Any = None
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] | None = None
    hold: asyncio.Event | None = None

    def encoded(self) -> tuple[dict[str, str], bytes]:
        headers = dict(self.headers)
        body = self.body.encode() if isinstance(self.body, str) else self.body
        if self.json is not None:
            body = json.dumps(self.json).encode()
            headers.setdefault("Content-Type", "application/json")
        return headers, body


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, headers={"Location": location})


Handler = Callable[[Recorded], Reply | Awaitable[Reply]]


class HttpPeer:
    """The server; ``handler`` answers requests once the ``script`` queue is empty."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        handler: Handler | None = None,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.tls = tls
        self.port = 0
        self.requests: list[Recorded] = []
        self.handler: Handler = handler or (lambda _: Reply(200, json={"ok": True}))
        self._script: deque[Reply] = deque()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        self._script.extend(replies)

    async def __aenter__(self) -> HttpPeer:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                reply = self._script.popleft() if self._script else self.handler(request)
                if not isinstance(reply, Reply):
                    reply = await reply
                if reply.hold is not None:
                    await reply.hold.wait()
                await _write_reply(writer, request, reply)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Recorded | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    header_list = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            header_list.append((name.strip(), value.strip()))
    headers = {name.lower(): value for name, value in header_list}
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += data[:-2]
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return Recorded(method, target, header_list, body)


async def _write_reply(writer: asyncio.StreamWriter, request: Recorded, reply: Reply) -> None:
    headers, body = reply.encoded()
    status_line = f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}\r\n"
    if reply.chunks is not None:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers.setdefault("Content-Length", str(len(body)))
    head = status_line + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write((head + "\r\n").encode("latin-1"))
    if request.method != "HEAD":
        if reply.chunks is not None:
            for chunk in reply.chunks:
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(body)
    await writer.drain()
