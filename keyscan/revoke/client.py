"""The Admin API calls revocation needs, on top of keyscan.http (retries, backoff, safe URLs).

Lists follow pagination to the end (``after=last_id`` while ``has_more``); project lists ask
for archived projects too, project key lists ask ``owner_project_access=any`` (without it some
enabled keys are hidden). A server whose pages loop (a cursor seen before, a page that brings
no new object, ``has_more`` without a usable ``last_id``) or never end (``MAX_PAGES``) is
stopped with a clear error instead of being followed. Failures raise ``AdminApiError`` with
one readable line.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from keyscan.revoke.errors import AdminApiError, classify

if TYPE_CHECKING:
    from keyscan.http import Params
from keyscan.revoke.execute import Answer

PAGE_LIMIT = 100
# A guard against a server that never stops saying has_more (100,000 objects at 100 a page).
MAX_PAGES = 1_000


def _seg(value: str) -> str:
    """An id as one URL path segment (ids come from the API or the user: never trust them)."""
    return quote(value, safe="")


class AdminClient:
    """Admin API client. ``api`` is a ``keyscan.http.ApiClient`` (owned: closed with this)."""

    def __init__(self, api: Any, admin_key: str, page_limit: int = PAGE_LIMIT) -> None:
        self.api = api
        self._admin_key = admin_key
        self.page_limit = page_limit

    @classmethod
    def connect(
        cls, base_url: str, admin_key: str, transport: Any = None, retries: int = 3,
        timeout: float = 20.0, backoff_initial: float = 0.5,
    ) -> AdminClient:
        """A client on ``base_url``; raises ``AdminApiError`` (kind "config") for a bad URL."""
        from keyscan.http import ApiClient, ClientSettings, UnsafeBaseUrl

        settings = ClientSettings(
            timeout=timeout, retries=retries, transport=transport, backoff_initial=backoff_initial
        )
        try:
            api = ApiClient(base_url, settings)
        except UnsafeBaseUrl as exc:
            raise AdminApiError("config", str(exc)) from None
        return cls(api, admin_key)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.api.close()

    # -- plumbing -------------------------------------------------------------------------------
    def call(
        self, method: str, path: str, params: Params | None = None
    ) -> Answer:
        """One request; a non-2xx answer raises AdminApiError (kind from the status)."""
        from keyscan.http import RequestFailed

        try:
            resp = self.api.request(method, path, bearer=self._admin_key, params=params)
        except RequestFailed as exc:
            if exc.kind == "too-large":
                raise AdminApiError("protocol", f"{method} {path}: {exc}") from None
            raise AdminApiError(
                "network", f"{method} {path}: cannot reach the Admin API at "
                f"{self.api.base_url}: {exc}"
            ) from None
        request_id = resp.headers.get("x-request-id")
        if 200 <= resp.status < 300:
            if resp.body is None and method != "DELETE":
                raise AdminApiError(
                    "protocol", f"{method} {path}: the answer is not JSON", resp.status,
                    request_id,
                )
            return Answer(resp.status, resp.body, request_id)
        message = resp.error_message or f"{method} {path} answered HTTP {resp.status}"
        kind = classify(resp.status, message, resp.error_code)
        raise AdminApiError(kind, message, resp.status, request_id, resp.error_code)

    def list_all(self, path: str, params: Mapping[str, str | int] | None = None
                 ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        seen_ids: set[str] = set()
        cursors: set[str] = set()
        after: str | None = None
        for n in range(1, MAX_PAGES + 1):
            query: dict[str, str | int] = {"limit": self.page_limit, **(params or {})}
            if after:
                query["after"] = after
            answer = self.call("GET", path, query)
            body = answer.body
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise AdminApiError(
                    "protocol", f"GET {path}: not a list answer", answer.status, answer.request_id
                )
            page = [x for x in body["data"] if isinstance(x, dict)]
            fresh = [x for x in page if str(x.get("id")) not in seen_ids]
            seen_ids.update(str(x.get("id")) for x in page)
            items.extend(fresh)
            if not body.get("has_more"):
                return items
            last = body.get("last_id") or (page[-1].get("id") if page else None)
            if not isinstance(last, str) or not last:
                raise AdminApiError(
                    "protocol", f"GET {path}: has_more without a usable last_id",
                    answer.status, answer.request_id,
                )
            if last in cursors or last == after or not fresh:
                why = (
                    f"page {n} brings no new object" if not fresh
                    else f"page {n} points back to cursor {last!r}, seen before"
                )
                raise AdminApiError(
                    "protocol",
                    f"GET {path}: the Admin API's pagination loops ({why}); stopped after "
                    f"{n} pages, nothing was deleted from this list",
                    answer.status, answer.request_id,
                )
            cursors.add(last)
            after = last
        raise AdminApiError(
            "protocol", f"GET {path}: more than {MAX_PAGES} pages (has_more never ends); stopped"
        )

    # -- reads ----------------------------------------------------------------------------------
    def list_projects(self) -> list[dict[str, Any]]:
        return self.list_all("/organization/projects", {"include_archived": "true"})

    def list_project_keys(self, project_id: str) -> list[dict[str, Any]] | None:
        """Every enabled key of a project, or None if the project does not exist (404)."""
        try:
            return self.list_all(
                f"/organization/projects/{_seg(project_id)}/api_keys",
                {"owner_project_access": "any"},
            )
        except AdminApiError as exc:
            if exc.kind == "not-found":
                return None
            raise

    def list_admin_keys(self) -> list[dict[str, Any]]:
        return self.list_all("/organization/admin_api_keys")

    def get_project_key(self, project_id: str, key_id: str) -> dict[str, Any] | None:
        try:
            body = self.call(
                "GET", f"/organization/projects/{_seg(project_id)}/api_keys/{_seg(key_id)}"
            ).body
        except AdminApiError as exc:
            if exc.kind == "not-found":
                return None
            raise
        return body if isinstance(body, dict) else None

    def get_admin_key(self, key_id: str) -> dict[str, Any] | None:
        try:
            body = self.call("GET", f"/organization/admin_api_keys/{_seg(key_id)}").body
        except AdminApiError as exc:
            if exc.kind == "not-found":
                return None
            raise
        return body if isinstance(body, dict) else None

    def admin_key_visible_to(self, secret: str, key_id: str) -> bool:
        """Whether the admin key ``secret`` (a leaked one) can itself read admin key
        ``key_id``: then both belong to the same organization. Any failure: False."""
        from keyscan.http import RequestFailed

        try:
            resp = self.api.request(
                "GET", f"/organization/admin_api_keys/{_seg(key_id)}", bearer=secret
            )
        except RequestFailed:
            return False
        body = resp.body
        return resp.status == 200 and isinstance(body, dict) and body.get("id") == key_id

    # -- writes ---------------------------------------------------------------------------------
    def delete_project_key(self, project_id: str, key_id: str) -> Answer:
        return self.call(
            "DELETE", f"/organization/projects/{_seg(project_id)}/api_keys/{_seg(key_id)}"
        )

    def delete_service_account(self, project_id: str, service_account_id: str) -> Answer:
        return self.call(
            "DELETE",
            f"/organization/projects/{_seg(project_id)}/service_accounts/"
            f"{_seg(service_account_id)}",
        )

    def delete_admin_key(self, key_id: str) -> Answer:
        return self.call("DELETE", f"/organization/admin_api_keys/{_seg(key_id)}")
