"""httpx transports (sync and async) that answer with the fake, without a socket.

    state = FakeState(); state.add_key(key("project"))
    client = httpx.AsyncClient(transport=AsyncFakeTransport(state), base_url="https://api.openai.com/v1")

"drop" raises ``httpx.RemoteProtocolError``; "hang" waits for the request's read timeout
(or ``state.hang_seconds``, or shutdown via ``state.released``) and raises
``httpx.ReadTimeout``, as a real connection would. A spec violation raises AssertionError.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.fakeopenai.app import Request, Response, handle
from tests.fakeopenai.state import FakeState


def _to_request(request: httpx.Request, body: bytes) -> Request:
    return Request.build(
        request.method,
        request.url.raw_path.decode("ascii"),
        dict(request.headers.items()),
        body,
    )


def _read_timeout(request: httpx.Request, state: FakeState) -> float:
    timeout = request.extensions.get("timeout", {})
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return float(read) if read is not None else state.hang_seconds


def _to_httpx(request: httpx.Request, state: FakeState, resp: Response) -> httpx.Response:
    if state.spec_violations:
        raise AssertionError("fake OpenAI spec violation: " + state.spec_violations[-1])
    headers = dict(resp.headers)
    if resp.body is not None:
        headers["content-type"] = "application/json"
    return httpx.Response(resp.status, headers=headers, content=resp.encoded(), request=request)


class FakeTransport(httpx.BaseTransport):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.state.begin()
        try:
            resp = handle(self.state, _to_request(request, body))
            if resp.delay:
                time.sleep(resp.delay)
            if resp.action == "drop":
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
            if resp.action == "hang":
                self.state.released.wait(
                    min(_read_timeout(request, self.state), self.state.hang_seconds)
                )
                raise httpx.ReadTimeout("timed out", request=request)
            return _to_httpx(request, self.state, resp)
        finally:
            self.state.end()


class AsyncFakeTransport(httpx.AsyncBaseTransport):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.state.begin()
        try:
            resp = handle(self.state, _to_request(request, body))
            if resp.delay:
                await asyncio.sleep(resp.delay)
            if resp.action == "drop":
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
            if resp.action == "hang":
                await asyncio.sleep(
                    min(_read_timeout(request, self.state), self.state.hang_seconds)
                )
                raise httpx.ReadTimeout("timed out", request=request)
            return _to_httpx(request, self.state, resp)
        finally:
            self.state.end()
