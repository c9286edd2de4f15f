"""The outbound HTTP service against real servers on loopback addresses.

Redirect hops pass the policy before any connection is opened, the Host header and TLS
certificate checks stay on the URL's name, bodies are cut at the size limit, and every
failure says whether a retry may help. Only 127.0.0.0/8 is ever contacted.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.outbound.client import OutboundHTTP
from server.outbound.errors import (
    InvalidDestination,
    OutboundBlocked,
    OutboundError,
    OutboundTimeout,
    OutboundUnreachable,
    ResponseTooLarge,
    TooManyRedirects,
)
from server.outbound.policy import OutboundPolicy
from tests.integration.nodes.http_peer import HttpPeer, Reply, redirect

LIMIT = 1000


@pytest.fixture
async def peer() -> AsyncIterator[HttpPeer]:
    async with HttpPeer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[OutboundHTTP]:
    service = OutboundHTTP(OutboundPolicy(deny=["127.0.0.2"]), max_response_bytes=LIMIT)
    yield service
    await service.aclose()


async def test_a_redirect_to_a_denied_address_is_refused_before_connecting(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    async with HttpPeer("127.0.0.2") as denied:
        peer.script(redirect(denied.url("/steal")))
        with pytest.raises(OutboundBlocked) as caught:
            await http.request("GET", peer.url("/start"))
        assert "destination 127.0.0.2 is blocked by outbound.deny entry '127.0.0.2'" in str(
            caught.value
        )
        assert caught.value.retryable is False
        assert denied.requests == []  # not one request reached the denied server
    assert [r.path for r in peer.requests] == ["/start"]


async def test_a_denied_address_is_refused_directly_too(http: OutboundHTTP) -> None:
    async with HttpPeer("127.0.0.2") as denied:
        with pytest.raises(OutboundBlocked):
            await http.request("POST", denied.url("/"), content=b"x")
        assert denied.requests == []


async def test_redirects_are_followed_with_each_hop_recorded(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    peer.script(
        redirect("/two", 301), redirect(peer.url("/three")), Reply(200, json={"at": "three"})
    )
    response = await http.request("GET", peer.url("/one"), headers={"X-Trace": "t1"})
    assert response.status_code == 200
    assert response.content == b'{"at": "three"}'
    assert response.url == peer.url("/three")
    assert [(r.method, r.path, r.headers.get("x-trace")) for r in peer.requests] == [
        ("GET", "/one", "t1"),
        ("GET", "/two", "t1"),
        ("GET", "/three", "t1"),
    ]


async def test_at_most_five_redirects_are_followed(peer: HttpPeer, http: OutboundHTTP) -> None:
    peer.script(*(redirect(f"/hop{i}") for i in range(5)), Reply(200, body="end"))
    assert (await http.request("GET", peer.url("/"))).content == b"end"
    peer.requests.clear()
    peer.script(*(redirect(f"/hop{i}") for i in range(6)))
    with pytest.raises(TooManyRedirects, match="more than 5"):
        await http.request("GET", peer.url("/"))
    assert len(peer.requests) == 6  # the first request and five hops, no seventh


async def test_without_follow_redirects_the_redirect_is_the_response(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    peer.script(redirect("/elsewhere"))
    response = await http.request("GET", peer.url("/"), follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/elsewhere"
    assert len(peer.requests) == 1


async def test_a_redirect_body_is_never_read(peer: HttpPeer, http: OutboundHTTP) -> None:
    huge = Reply(302, headers={"Location": "/next"}, body=b"x" * (LIMIT * 50))
    peer.script(huge, Reply(200, body="small"))
    assert (await http.request("GET", peer.url("/"))).content == b"small"


async def test_303_turns_into_a_get_and_307_keeps_method_and_body(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    peer.script(redirect("/b", 307), redirect("/c", 303), Reply(204))
    await http.request(
        "POST", peer.url("/a"), content=b'{"n": 1}', headers={"Content-Type": "application/json"}
    )
    a, b, c = peer.requests
    assert (a.method, a.body, b.method, b.body) == ("POST", b'{"n": 1}', "POST", b'{"n": 1}')
    assert b.headers["content-type"] == "application/json"
    assert (c.method, c.body) == ("GET", b"")
    assert "content-type" not in c.headers


async def test_credentials_do_not_follow_a_redirect_to_another_origin(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    async with HttpPeer() as other:
        peer.script(redirect("/same"), redirect(other.url("/other")))
        await http.request(
            "GET",
            peer.url("/"),
            headers={"Authorization": "Bearer s3cret", "X-Api-Key": "k", "Idempotency-Key": "i"},
            sensitive_headers=["X-Api-Key"],
        )
        same = peer.requests[1].headers
        assert (same["authorization"], same["x-api-key"]) == ("Bearer s3cret", "k")
        (moved,) = other.requests
        assert "authorization" not in moved.headers
        assert "x-api-key" not in moved.headers
        assert moved.headers["idempotency-key"] == "i"
        assert moved.headers["host"] == f"127.0.0.1:{other.port}"


async def test_the_host_header_keeps_the_name_while_the_checked_address_is_used(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    response = await http.request("GET", peer.url("/named", host="localhost"))
    assert response.status_code == 200
    assert peer.requests[0].headers["host"] == f"localhost:{peer.port}"


async def test_query_parameters_are_added_to_the_urls_own(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    await http.request("GET", peer.url("/q?a=1"), params={"b": "2", "c": ["3", "4"]})
    assert peer.requests[0].query == {"a": ["1"], "b": ["2"], "c": ["3", "4"]}


async def test_a_body_over_the_limit_is_refused_by_its_declared_length(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    peer.script(Reply(200, body=b"x" * (LIMIT + 1)))
    with pytest.raises(ResponseTooLarge, match=r"limits.max_response_bytes \(1000 bytes\)"):
        await http.request("GET", peer.url("/big"))
    peer.script(Reply(200, body=b"x" * LIMIT))
    assert len((await http.request("GET", peer.url("/fits"))).content) == LIMIT


async def test_a_streamed_body_is_cut_at_the_limit(peer: HttpPeer, http: OutboundHTTP) -> None:
    endless = (b"y" * 100 for _ in range(100_000))  # 10 MB if it were all read
    peer.script(Reply(200, chunks=endless))
    with pytest.raises(ResponseTooLarge) as caught:
        await http.request("GET", peer.url("/stream"))
    assert caught.value.retryable is False
    assert "declares" not in caught.value.message


async def test_a_peer_that_does_not_answer_times_out_retryably(
    peer: HttpPeer, http: OutboundHTTP
) -> None:
    release = asyncio.Event()
    peer.script(Reply(200, hold=release))
    with pytest.raises(OutboundTimeout) as caught:
        await http.request("GET", peer.url("/slow"), timeout=0.2)
    release.set()
    assert caught.value.retryable is True
    assert "0.2 s" in caught.value.message


async def test_a_refused_connection_is_retryable(http: OutboundHTTP) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OutboundUnreachable) as caught:
        await http.request("GET", f"http://127.0.0.1:{port}/")
    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:70/", "http:///path"]
)
async def test_only_http_urls_with_a_host_are_called(http: OutboundHTTP, url: str) -> None:
    with pytest.raises(InvalidDestination):
        await http.request("GET", url)


async def test_a_redirect_to_another_scheme_is_refused(peer: HttpPeer, http: OutboundHTTP) -> None:
    peer.script(redirect("file:///etc/passwd"))
    with pytest.raises(InvalidDestination, match="only http and https"):
        await http.request("GET", peer.url("/"))


async def test_credentials_in_the_url_never_appear_in_errors(http: OutboundHTTP) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OutboundError) as caught:
        await http.request("GET", f"http://user:hunter2@127.0.0.1:{port}/p?token=abc")
    assert "hunter2" not in caught.value.message
    assert "abc" not in caught.value.message
    assert f"http://127.0.0.1:{port}/p" in caught.value.message


# --- TLS: the certificate is checked against the URL's name, not the address -----------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name ``localhost`` only (made with openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


async def test_tls_checks_the_certificate_against_the_original_name(
    certificate: tuple[Path, Path],
) -> None:
    key, cert = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    http = OutboundHTTP(OutboundPolicy(), max_response_bytes=LIMIT, ssl_context=client_context)
    try:
        async with HttpPeer(tls=server_context) as peer:
            # localhost resolves to 127.0.0.1, the connection goes there, and the
            # certificate is verified for "localhost" (SNI too).
            response = await http.request("GET", peer.url("/secure", host="localhost"))
            assert response.status_code == 200
            assert peer.requests[0].headers["host"] == f"localhost:{peer.port}"
            # The same address under a name the certificate does not carry is refused.
            with pytest.raises(OutboundUnreachable, match="certificate"):
                await http.request("GET", peer.url("/secure", host="127.0.0.1"))
            assert len(peer.requests) == 1
    finally:
        await http.aclose()


async def test_a_head_answer_may_declare_a_large_body(peer: HttpPeer, http: OutboundHTTP) -> None:
    peer.script(Reply(200, headers={"Content-Length": str(LIMIT * 100)}))
    response = await http.request("HEAD", peer.url("/file"))
    assert response.status_code == 200
    assert response.content == b""
