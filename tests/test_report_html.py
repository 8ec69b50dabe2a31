"""``keyscan report``: HTML, Markdown and JSON from the audit store; hostile strings from
repositories (commit subjects, paths, author names, repository names) stay inert text."""

from __future__ import annotations

import html.parser
import json
import os
import stat
from pathlib import Path

import pytest

from keyscan.audit.html import esc
from keyscan.audit.markdown import code, md
from keyscan.models import fingerprint_of, redact
from tests.audit_fixtures import (
    HOSTILE_AUTHOR,
    HOSTILE_PATH,
    HOSTILE_SUBJECT,
    hostile_audit,
    keyscan,
)


class Text(html.parser.HTMLParser):
    """Visible text and the tags of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    return hostile_audit(tmp_path_factory.mktemp("report"))


def render(db: Path, fmt: str, *extra: str) -> str:
    out = db.parent / f"out.{fmt}"
    proc = keyscan("report", "--db", str(db), "--format", fmt, "-o", str(out), *extra,
                   cwd=db.parent)
    assert proc.returncode == 1, proc.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    return out.read_text()


def test_html_is_self_contained_escaped_and_redacted(audited: tuple[Path, dict[str, str]]) -> None:
    db, keys = audited
    page = render(db, "html")
    parser = Text()
    parser.feed(page)
    # Hostile strings are text, never markup: no script element, no event handler attribute.
    assert "script" not in parser.tags and "img" not in parser.tags
    assert not [a for a, _ in parser.attrs if a.startswith("on")]
    assert "<script" not in page.lower()
    text = "".join(parser.text)
    assert HOSTILE_SUBJECT in text
    assert HOSTILE_PATH in text
    assert "evil<b>repo</b>" in text
    assert "Mallory" in text
    # Self-contained: nothing to fetch (no src/href to a URL, no CSS import or url()).
    assert not [a for a, _ in parser.attrs if a in ("src", "srcset", "action", "data")]
    assert not [v for a, v in parser.attrs if a == "href" and v and not v.startswith("#")]
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "@import" not in style and "url(" not in style
    assert page.count("<style>") == 1 and "style=" not in page.replace('<span style="color:', "")
    assert "default-src 'none'" in page and "<svg" in page
    # Redacted throughout.
    for k in keys.values():
        assert k not in page and k[8:-4] not in page
        assert redact(k) in text
    # The content a person needs.
    assert "Unique keys" in text and "Live keys" in text and "Timeline" in text
    assert "Rita Remover" in text  # who removed the service-account key
    assert "git filter-repo --sensitive-data-removal --replace-text replacements.txt" in text
    kept = fingerprint_of(keys["kept"])[:12]
    assert f"keyscan revoke --report keyscan-key-{kept}.json" in text
    assert f"{HOSTILE_PATH}:1" in text


def test_markdown_for_a_ticket(audited: tuple[Path, dict[str, str]]) -> None:
    db, keys = audited
    text = render(db, "md")
    assert text.startswith("## keyscan audit: leaked OpenAI keys")
    assert "**Unique keys:** 3" in text
    for k in keys.values():
        assert k not in text and f"`{redact(k)}`" in text
    # No raw HTML or markup from the repository survives.
    assert "<script" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text
    assert "\\[a\\](b)" in text and "\\|" in text
    # The admin key was committed first (2020): in the summary table it is named, with its
    # repository, and the service-account key is marked as gone from HEAD.
    assert "history only (not at HEAD)" in text


def test_json_is_a_keyscan_report(audited: tuple[Path, dict[str, str]]) -> None:
    db, keys = audited
    doc = json.loads(render(db, "json"))
    assert doc["scan"]["kind"] == "audit" and doc["scan"]["secrets"] == 3
    by_fp = {f["fingerprint"]: f for f in doc["findings"]}
    gone = by_fp[fingerprint_of(keys["gone"])]["extra"]["audit"]
    assert gone["still_at_head"] is False
    assert gone["repositories"][0]["removed_author"] == "Rita Remover"
    kept = by_fp[fingerprint_of(keys["kept"])]
    assert kept["extra"]["audit"]["still_at_head"] is True
    first = kept["extra"]["audit"]["repositories"][0]
    assert first["introduced_subject"] == HOSTILE_SUBJECT
    assert first["introduced_author"] == HOSTILE_AUTHOR
    assert first["introduced_path"] == HOSTILE_PATH
    assert all("secret" not in f for f in doc["findings"])
    # --key: one key only.
    one = json.loads(render(db, "json", "--key", fingerprint_of(keys["admin"])[:10]))
    assert [f["fingerprint"] for f in one["findings"]] == [fingerprint_of(keys["admin"])]


def test_escaping_helpers() -> None:
    assert esc('<a href="x">&\x1b[31m') == "&lt;a href=&quot;x&quot;&gt;&amp;\\x1b[31m"
    assert md("<b>|*x*|@team") == "&lt;b&gt;\\|\\*x\\*\\|&#64;team"
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"


def test_clean_audit_reports_no_keys(tmp_path: Path) -> None:
    from tests.audit_fixtures import Repo

    r = Repo(tmp_path / "clean")
    r.commit("nothing", {"a.txt": "hello\n"})
    db = tmp_path / "a.db"
    assert keyscan("audit", str(r.path), "--db", str(db), cwd=tmp_path).returncode == 0
    for fmt, expected in (("html", "No keys found"), ("md", "No keys found"),
                          ("json", '"secrets": 0')):
        proc = keyscan("report", "--db", str(db), "--format", fmt, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert expected in proc.stdout
