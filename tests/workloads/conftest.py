"""Fixtures for the workload tests: the fast SSE test server (tests/sse_server.py) on port 0,
the same requests served by uvicorn (tests/asgi_sse_server.py), a server writing scripted
bytes, and a local certificate authority for HTTPS."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from scripted_server import ScriptedServer

from sse_server import ServerOptions, ServerStats, SSEServer

ServerFactory = Callable[..., SSEServer]


class StreamServer(Protocol):
    @property
    def url(self) -> str: ...

    stats: ServerStats

    def stop(self) -> None: ...


@pytest.fixture
def make_sse_server() -> Iterator[ServerFactory]:
    """``make_sse_server(**ServerOptions fields)`` starts a server; all stop at teardown."""
    servers: list[SSEServer] = []

    def make(**options: Any) -> SSEServer:
        server = SSEServer(ServerOptions(**options)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sse_server(make_sse_server: ServerFactory) -> SSEServer:
    """A default server: honours stream_options, serves /metrics with one engine."""
    return make_sse_server()


@dataclass(frozen=True)
class TLSFiles:
    ca: Path  # the authority's certificate, for the client's SSL_CERT_FILE
    cert: Path  # the server's certificate for 127.0.0.1, signed by the authority
    key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A throw-away certificate authority and a server certificate for IP 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a local certificate")
    d = tmp_path_factory.mktemp("tls")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    commands = [
        f"req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        f"req {ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1",
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem"
        " -days 2 -extfile ext.cnf",
    ]
    for command in commands:
        subprocess.run(
            ["openssl", *command.split()], cwd=d, check=True, capture_output=True, timeout=30
        )
    return TLSFiles(d / "ca.pem", d / "server.pem", d / "server.key")


@pytest.fixture(params=["asyncio-server", "uvicorn-h11"])
def make_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., StreamServer]]:
    """``make_server(tls=False)``: the hand-written asyncio test server or uvicorn + h11
    serving the same requests, so a test passes against two readings of HTTP."""
    servers: list[StreamServer] = []

    def make(tls: bool = False) -> StreamServer:
        server: StreamServer
        tls_files: TLSFiles | None = request.getfixturevalue("tls_files") if tls else None
        if request.param == "uvicorn-h11":
            from asgi_sse_server import ASGISSEServer  # uvicorn: only these tests need it

            cert, key = (tls_files.cert, tls_files.key) if tls_files else (None, None)
            server = ASGISSEServer(certfile=cert, keyfile=key).start()
        else:
            context = None
            if tls_files:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(tls_files.cert, tls_files.key)
            server = SSEServer(ssl=context).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def scripted_server() -> Iterator[Callable[..., ScriptedServer]]:
    """``scripted_server(pieces, close=False)`` starts a :class:`ScriptedServer`."""
    servers: list[tuple[ScriptedServer, threading.Thread]] = []

    def start(pieces: list[bytes], close: bool = False) -> ScriptedServer:
        server = ScriptedServer(pieces, close)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        server.ready.wait(5)
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        assert server.loop is not None
        server.loop.call_soon_threadsafe(server.stop.set)
        thread.join(5)


@pytest.fixture
def scripted(scripted_server: Callable[..., ScriptedServer]) -> Callable[..., str]:
    """``scripted(pieces, close=False)`` starts a scripted server and returns its URL."""

    def start(pieces: list[bytes], close: bool = False) -> str:
        return f"http://127.0.0.1:{scripted_server(pieces, close).port}"

    return start
