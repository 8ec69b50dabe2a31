"""The full-history hot path (issue 16): cheaper per-member and per-object Python, the same
answers.

* An archive member's location is derived without ``dataclasses.replace`` (no
  ``__init__`` per member): equal to what ``replace`` builds, sharing no mutable state.
* A history with a zip holding many members still finds the key in its member, located as
  before (``path!member``).
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

from keyscan.formats.archives import _derive, _in
from keyscan.keygen import key
from keyscan.models import CommitInfo, Location
from keyscan.redaction import redact
from tests.git_helpers import Repo, scan


def _template() -> Location:
    return Location(
        path="dist/app.zip", line=0, column=0, offset=0, binary=True, source="git-blob",
        commit=CommitInfo(sha="a" * 40, author_name="a", author_email="a@b.invalid",
                          date="2026-11-29T00:00:00+00:00", subject="s"),
        blob="b" * 40, extra={"tree": "c" * 40}, member=("outer.zip",),
    )  # fmt: skip


def test_derived_member_location_equals_replace() -> None:
    template = _template()
    derived = _in(template, "pkg/config.py")
    built = dataclasses.replace(
        template, member=(*template.member, "pkg/config.py"), extra=dict(template.extra)
    )
    assert derived == built and type(derived) is Location
    assert derived.display_path == "dist/app.zip!outer.zip!pkg/config.py"
    derived.extra["cell"] = 1  # its own dict: the archive's location is untouched
    assert "cell" not in template.extra
    flipped = _derive(template, binary=False)
    assert flipped == dataclasses.replace(template, binary=False) and template.binary


def test_key_in_a_zip_member_in_history(tmp_path: Path) -> None:
    secret = key("project")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(300):
            zf.writestr(f"pkg/mod{i}.py", f"x = {i}\n")
        zf.writestr("pkg/settings.py", f'OPENAI_API_KEY = "{secret}"\n')
    repo = Repo(tmp_path / "repo")
    repo.commit("add wheel", ("dist/app.zip", buf.getvalue()))
    result = scan(repo.path)
    assert not result.errors, result.errors
    (finding,) = [f for f in result.findings if f.secret == secret]
    assert [loc.display_path for loc in finding.locations] == ["dist/app.zip!pkg/settings.py"]
    assert redact(secret) != secret
