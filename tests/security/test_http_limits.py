"""The HTTP client never lets a slow, huge, looping or impostor server hold or fool keyscan
(issue 11, item 14).

Real servers on 127.0.0.1: a tiny raw-socket server that drips one byte at a time (in the
body, or inside the headers), one that sends an endless body, and one that answers 200 with
an HTML page (a captive portal); plus the fake OpenAI API serving pages that loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from keyscan.http import ApiClient, AsyncApiClient, ClientSettings, RequestFailed
from keyscan.keygen import key
from keyscan.revoke.client import AdminClient
from keyscan.revoke.errors import AdminApiError
from keyscan.verify import VerifyOptions, verify_key
from tests.fakeopenai import FakeServer, FakeState, FakeTransport
from tests.fakeopenai.app import Request, Response, json_response, register
from tests.fakeopenai.org import _admin, list_projects, project_json

Handler = Callable[[socket.socket, threading.Event], None]


class RawServer:
    """A raw TCP server on 127.0.0.1: ``handler(conn, stop)`` runs for each connection in a
    daemon thread; it counts the bytes it sent. ``stop`` is set when the test ends."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.sent = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self.lock:
            self.sent += len(data)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.handler(conn, self.stop)
        except OSError:
            pass  # the client went away: what these tests want
        finally:
            conn.close()

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def drip(server_ref: list[RawServer], head: bytes, every: float = 0.1) -> Handler:
    """Send ``head`` at once, then one byte every ``every`` seconds, forever."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        server_ref[0].send(conn, head)
        while not stop.is_set():
            server_ref[0].send(conn, b" ")
            time.sleep(every)

    return handler


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[list[RawServer]], Handler]], RawServer]]:
    servers: list[RawServer] = []

    def start(make: Callable[[list[RawServer]], Handler]) -> RawServer:
        ref: list[RawServer] = []
        server = RawServer(make(ref))
        ref.append(server)
        servers.append(server.__enter__())
        return server

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def finishes_within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it takes longer."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s: no overall deadline"
    box["elapsed"] = time.monotonic() - start
    return box


BODY_DRIP = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n"
HEADER_DRIP = b"HTTP/1.1 200 OK\r\nx-slow: "


# -- overall deadline ----------------------------------------------------------------------------

@pytest.mark.parametrize("head", [BODY_DRIP, HEADER_DRIP], ids=["body", "headers"])
def test_sync_client_cuts_off_a_drip(serve: Any, head: bytes) -> None:
    """Each byte comes well within the 1 s per-read timeout: only a limit on the whole
    attempt ends it."""
    server = serve(lambda ref: drip(ref, head))
    secret = key("admin")
    settings = ClientSettings(timeout=1.0, retries=0, deadline=3.0)

    def call() -> Any:
        with ApiClient(server.base_url, settings) as api:
            return api.request("GET", "/organization/projects", bearer=secret)

    box = finishes_within(8, call)
    assert isinstance(box.get("error"), RequestFailed), box
    assert box["error"].kind == "timeout" and box["elapsed"] < 3
    assert secret not in str(box["error"])


def test_async_client_has_an_overall_deadline(serve: Any) -> None:
    """Retries do not multiply the wait: the request as a whole ends at its deadline."""
    server = serve(lambda ref: drip(ref, HEADER_DRIP))
    settings = ClientSettings(timeout=1.0, retries=6, deadline=2.5, backoff_initial=0.01)

    async def call() -> Any:
        async with AsyncApiClient(server.base_url, settings) as api:
            return await api.request("GET", "/models", bearer=key("project"))

    box = finishes_within(15, lambda: asyncio.run(call()))
    assert isinstance(box.get("error"), RequestFailed), box
    assert box["error"].kind == "timeout" and box["elapsed"] < 4, box
    assert "deadline" in str(box["error"])


def test_admin_client_on_a_drip_gives_one_clear_error(serve: Any) -> None:
    server = serve(lambda ref: drip(ref, BODY_DRIP))
    admin = key("admin")

    def call() -> Any:
        with AdminClient.connect(server.base_url, admin, retries=1, timeout=1.0,
                                 backoff_initial=0.01) as client:
            return client.list_projects()

    box = finishes_within(10, call)
    err = box.get("error")
    assert isinstance(err, AdminApiError) and err.kind == "network", box
    assert "timed out" in err.message and admin not in err.message


# -- body size limit --------------------------------------------------------------------------

def endless(chunked: bool) -> Callable[[list[RawServer]], Handler]:
    def make(ref: list[RawServer]) -> Handler:
        def handler(conn: socket.socket, stop: threading.Event) -> None:
            if chunked:
                head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"transfer-encoding: chunked\r\n\r\n")
            else:
                head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: 8000000000\r\n\r\n")
            ref[0].send(conn, head)
            block = b" " * 65536
            piece = b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
            while not stop.is_set():
                ref[0].send(conn, piece)

        return handler

    return make


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_answer_is_refused_not_read(serve: Any, chunked: bool) -> None:
    server = serve(endless(chunked))
    settings = ClientSettings(timeout=20, retries=2, max_body=1_000_000)

    def call() -> Any:
        with ApiClient(server.base_url, settings) as api:
            return api.request("GET", "/models", bearer=key("project"))

    box = finishes_within(20, call)
    err = box.get("error")
    assert isinstance(err, RequestFailed) and err.kind == "too-large", box
    assert err.attempts == 1  # never retried
    assert server.sent < 64_000_000


def test_verification_of_a_huge_answer_is_unknown(serve: Any, tmp_path: Any) -> None:
    server = serve(endless(True))
    options = VerifyOptions(api_base=server.base_url, use_cache=False, timeout=20, retries=0)
    box = finishes_within(30, lambda: verify_key(key("project"), "project", options))
    v = box["value"]
    assert v.status == "unknown" and "larger than" in v.reason
    assert server.sent < 64_000_000


# -- a 200 that is not the API's JSON --------------------------------------------------------------

def fixed(status: str, ctype: str, body: bytes) -> Callable[[list[RawServer]], Handler]:
    def make(ref: list[RawServer]) -> Handler:
        def handler(conn: socket.socket, stop: threading.Event) -> None:
            ref[0].send(conn, (f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n"
                               f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
                               ).encode() + body)

        return handler

    return make


PORTAL = b"<html><body><form>Log in to the hotel Wi-Fi</form></body></html>"


@pytest.mark.parametrize(
    ("status", "ctype", "body"),
    [
        ("200 OK", "text/html", PORTAL),
        ("200 OK", "application/json", b'{"status": "ok"}'),
        ("429 Too Many Requests", "text/html", PORTAL),
    ],
    ids=["html-200", "other-json-200", "html-429"],
)
def test_an_impostor_answer_is_not_live(serve: Any, status: str, ctype: str,
                                        body: bytes) -> None:
    server = serve(fixed(status, ctype, body))
    for family in ("project", "admin"):
        options = VerifyOptions(api_base=server.base_url, use_cache=False, retries=0)
        v = verify_key(key(family), family, options)
        assert v.status == "unknown", (family, v)
        assert "says nothing about the key" in v.reason


def test_the_fake_api_answer_is_still_live(fake_state: FakeState, fake_server: FakeServer) -> None:
    secret = key("project")
    fake_state.add_key(secret)
    options = VerifyOptions(api_base=fake_server.base_url, use_cache=False)
    assert verify_key(secret, "project", options).status == "live"


# -- pagination that loops ---------------------------------------------------------------------

LIST_PROJECTS = r"/organization/projects"


@pytest.fixture
def looping(fake_state: FakeState) -> Iterator[dict[str, Any]]:
    """Projects p0..p2; the fake pages them one at a time, with a cursor that points back."""
    projects = [fake_state.add_project(f"P{i}") for i in range(3)]
    mode: dict[str, Any] = {"kind": "cursor"}

    def pages(state: FakeState, req: Request, m: Any) -> Response:
        auth = _admin(state, req)
        if isinstance(auth, Response):
            return auth
        ids = [p.id for p in projects]
        after = req.arg("after")
        i = ids.index(after) + 1 if after in ids else 0
        if mode["kind"] == "cursor":  # p0 -> p1 -> p2 whose "last_id" is p0 again -> ...
            chunk = [projects[i % 3]]
            last = ids[0] if i == 2 else ids[i % 3]
        else:  # the same page, with a fresh-looking cursor each time: no progress
            chunk = [projects[0]]
            last = ids[i % 3]
        data = [project_json(p) for p in chunk]
        body = {"object": "list", "data": data, "first_id": data[0]["id"], "last_id": last,
                "has_more": True}
        return json_response(body, "ProjectListResponse")

    register("GET", LIST_PROJECTS, pages)
    try:
        yield mode
    finally:
        register("GET", LIST_PROJECTS, list_projects)


@pytest.mark.parametrize("kind", ["cursor", "no-progress"])
def test_pagination_cycle_stops_with_a_clear_error(
    fake_state: FakeState, looping: dict[str, Any], kind: str
) -> None:
    looping["kind"] = kind
    admin = key("admin")
    fake_state.add_admin_key(admin)
    client = AdminClient.connect("https://api.openai.com/v1", admin, FakeTransport(fake_state),
                                 retries=0)
    with client, pytest.raises(AdminApiError, match="pagination loops") as info:
        client.list_projects()
    assert info.value.kind == "protocol"
    assert len(fake_state.requests(LIST_PROJECTS)) <= 4


def test_revoke_stops_on_looping_pages_and_deletes_nothing(
    fake_state: FakeState, fake_server: FakeServer, looping: dict[str, Any], tmp_path: Any
) -> None:
    from click.testing import CliRunner

    from keyscan.cli import cli

    admin = key("admin")
    fake_state.add_admin_key(admin)
    fake_state.send_project_header = False  # every project is listed
    secret = key("project")
    fake_state.add_key(secret)
    env = {"OPENAI_ADMIN_KEY": admin, "OPENAI_BASE_URL": fake_server.base_url,
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = CliRunner().invoke(cli, ["revoke", "-", "--yes", "--backoff", "0"],
                                input=secret + "\n", env=env)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("keyscan: error:")]
    assert len(errors) == 1 and "pagination loops" in errors[0]
    assert "nothing was deleted" in errors[0]
    assert not [r for r in fake_state.requests() if r.method == "DELETE"]
    assert secret not in result.output and admin not in result.output
    assert len(fake_state.requests(LIST_PROJECTS)) <= 4
