"""The fake OpenAI API over real HTTP on 127.0.0.1 (a ThreadingHTTPServer in a thread).

    state = FakeState()
    with FakeServer(state) as server:
        run("keyscan", "scan", "--verify", "--api-base", server.base_url, path)
    assert not state.spec_violations

``server.base_url`` is ``http://127.0.0.1:PORT/v1``. Hanging requests end on exit.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.fakeopenai.app import Request, Response, error_response, handle
from tests.fakeopenai.state import FakeState


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: FakeState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this, headers and body leave in two segments and Nagle + delayed ACK add ~40 ms
    # to every answer: the fake would measure the kernel, not keyscan.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _dispatch(self) -> None:
        state = self.server.state
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        state.begin()
        try:
            try:
                resp = handle(
                    state, Request.build(self.command, self.path, dict(self.headers.items()), body)
                )
            except Exception as exc:  # a bug in a route: answer 500, and say so
                state.violation(f"{self.command} {self.path}: handler raised {exc!r}")
                resp = error_response(500, "fake handler error", type="server_error")
            if resp.delay:
                state.released.wait(resp.delay)
            if resp.action == "drop":
                self.close_connection = True
                return
            if resp.action == "hang":
                state.released.wait(state.hang_seconds)
                self.close_connection = True
                return
            self._send(resp)
        finally:
            state.end()

    def _send(self, resp: Response) -> None:
        payload = resp.encoded()
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if resp.body is not None:
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch


class FakeServer:
    """Context manager: start on entry (random free port), stop on exit."""

    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state or FakeState()
        self._server = _Server(self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="fake-openai"
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeServer:
        self.state.released.clear()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.state.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
