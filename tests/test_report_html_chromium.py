"""The HTML audit report opened in a real browser (Debian's headless ``chromium``): what a
person sees is the summary, the keys (redacted), the timeline, and hostile commit subjects or
paths as plain text, never as elements. Skipped, saying why, when chromium is not installed
(``.ci/run`` installs it)."""

from __future__ import annotations

import html.parser
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from keyscan.models import redact
from tests.audit_fixtures import HOSTILE_PATH, HOSTILE_SUBJECT, hostile_audit, keyscan

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get install -y chromium); "
    "the HTML report was not checked in a browser",
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="keyscan-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=180,
        )


class Visible(html.parser.HTMLParser):
    """Text a person sees in a DOM (not inside head/style/title) and the element names."""

    HIDDEN = frozenset({"head", "style", "title", "script"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.elements: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(tag)
        if tag not in {"meta", "br", "link", "img", "input", "hr", "circle", "line", "rect",
                       "path"}:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if not self.HIDDEN & set(self.stack):
            self.text.append(data)


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    db, keys = hostile_audit(tmp_path)
    page = tmp_path / "report.html"
    proc = keyscan("report", "--db", str(db), "--format", "html", "-o", str(page), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    seen = Visible()
    seen.feed(dom.stdout)
    text = " ".join(" ".join(seen.text).split())
    # The browser built the document we meant: no script or img element from a commit subject
    # or path, and the hostile strings shown as text.
    assert "script" not in seen.elements and "img" not in seen.elements
    assert "svg" in seen.elements and "table" in seen.elements
    assert " ".join(HOSTILE_SUBJECT.split()) in text
    assert HOSTILE_PATH in text
    # The summary a person reads first, and each key, redacted.
    assert "keyscan audit report" in text
    assert "3 Unique keys" in text and "0 Live keys" in text and "2 Repositories" in text
    for k in keys.values():
        assert k not in dom.stdout
        assert redact(k) in text
    assert "Where it is now" in text and "What to do next" in text
    assert "keyscan revoke --report" in text and "git filter-repo" in text
    # And a picture of it.
    shot = tmp_path / "report.png"
    done = chromium("--window-size=1200,1400", f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 1400)
    assert len(data) > 20_000  # a rendered page, not a blank one
