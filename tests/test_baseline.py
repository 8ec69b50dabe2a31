"""keyscan baseline create|update|prune and scans with --baseline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from keyscan.baseline import Baseline, BaselineError, identity_of
from keyscan.cli import cli
from keyscan.keygen import key
from keyscan.models import fingerprint_of, redact


def run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def scan_json(args: list[str]) -> tuple[int, dict[str, Any]]:
    code, out, err = run(["scan", "-f", "json", *args])
    assert code in (0, 1), err
    return code, json.loads(out)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


BASE = ".keyscan-baseline.json"


def test_create_then_scan_hides_known_and_fails_on_new(repo: Path) -> None:
    old = key("project")
    (repo / "src" / "a.py").write_text(f'OLD = "{old}"\n')
    code, out, err = run(["baseline", "create", "src"])
    assert code == 0, err
    assert "1 entry; 1 recorded" in out
    text = (repo / BASE).read_text()
    assert old not in text  # never the raw key
    doc = json.loads(text)
    [entry] = doc["findings"]
    assert entry["fingerprint"] == fingerprint_of(old)
    assert entry["redacted"] == redact(old)
    assert entry["identity"] == identity_of(entry["rule_id"], fingerprint_of(old))
    assert entry["path"] == "src/a.py"
    assert set(entry) == {"identity", "rule_id", "family", "fingerprint", "redacted", "path"}

    code, doc = scan_json(["--baseline", BASE, "src"])
    assert code == 0 and doc["scan"]["suppressed"] == 1
    # Without the baseline the key is still reported. (create now names the baseline in
    # .keyscan.yaml, so a plain scan uses it: issue 12; --no-config leaves it out.)
    assert scan_json(["--no-config", "src"])[0] == 1

    # A new key on the very same line is never hidden.
    new = key("project")
    (repo / "src" / "a.py").write_text(f'OLD = "{old}"; NEW = "{new}"\n')
    code, doc = scan_json(["--baseline", BASE, "src"])
    assert code == 1
    assert [f["fingerprint"] for f in doc["findings"]] == [fingerprint_of(new)]


def test_moving_code_never_churns_the_file(repo: Path) -> None:
    one, two = key("project"), key("svcacct")
    (repo / "src" / "a.py").write_text(f'ONE = "{one}"\nTWO = "{two}"\n')
    assert run(["baseline", "create", "src"])[0] == 0
    before = (repo / BASE).read_bytes()
    # Move lines around, rename and move the file, add other content.
    (repo / "src" / "a.py").unlink()
    (repo / "src" / "pkg").mkdir()
    (repo / "src" / "pkg" / "moved.py").write_text(f'\n\n# moved\nTWO = "{two}"\n\nONE = "{one}"\n')
    assert run(["baseline", "update", "src"])[0] == 0
    assert (repo / BASE).read_bytes() == before
    assert scan_json(["--baseline", BASE, "src"])[0] == 0


def test_output_is_sorted_and_deterministic(repo: Path) -> None:
    keys = [key("project") for _ in range(5)]
    (repo / "src" / "a.py").write_text("".join(f'K{i} = "{k}"\n' for i, k in enumerate(keys)))
    assert run(["baseline", "create", "src"])[0] == 0
    first = (repo / BASE).read_bytes()
    assert run(["baseline", "create", "--force", "src"])[0] == 0
    assert (repo / BASE).read_bytes() == first
    doc = json.loads(first)
    ids = [e["identity"] for e in doc["findings"]]
    assert ids == sorted(ids) and len(ids) == 5
    assert first.decode() == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert "timestamp" not in first.decode() and '"line"' not in first.decode()


def test_create_refuses_to_overwrite(repo: Path) -> None:
    (repo / "src" / "a.py").write_text(f'A = "{key("project")}"\n')
    assert run(["baseline", "create", "src"])[0] == 0
    code, _, err = run(["baseline", "create", "src"])
    assert code == 2 and "already exists" in err


def test_update_adds_and_keeps_human_edits(repo: Path) -> None:
    one, two = key("project"), key("admin")
    (repo / "src" / "a.py").write_text(f'ONE = "{one}"\n')
    assert run(["baseline", "create", "src"])[0] == 0
    doc = json.loads((repo / BASE).read_text())
    doc["findings"][0]["reason"] = "revoked in 2024, kept in a test fixture"
    doc["findings"][0]["expires"] = "2999-01-01"
    (repo / BASE).write_text(json.dumps(doc))
    (repo / "src" / "b.py").write_text(f'TWO = "{two}"\n')
    code, out, _ = run(["baseline", "update", "src"])
    assert code == 0 and "2 entries; 1 added" in out
    entries = {e["fingerprint"]: e for e in json.loads((repo / BASE).read_text())["findings"]}
    assert entries[fingerprint_of(one)]["reason"].startswith("revoked in 2024")
    assert entries[fingerprint_of(one)]["expires"] == "2999-01-01"
    assert "reason" not in entries[fingerprint_of(two)]


def test_prune_drops_entries_no_longer_found(repo: Path) -> None:
    one, two = key("project"), key("project")
    (repo / "src" / "a.py").write_text(f'ONE = "{one}"\n')
    (repo / "src" / "b.py").write_text(f'TWO = "{two}"\n')
    assert run(["baseline", "create", "src"])[0] == 0
    (repo / "src" / "b.py").write_text("TWO = os.environ['KEY']\n")
    code, out, _ = run(["baseline", "prune", "src"])
    assert code == 0 and "1 entry; 1 pruned" in out
    [entry] = json.loads((repo / BASE).read_text())["findings"]
    assert entry["fingerprint"] == fingerprint_of(one)


def test_expired_entry_no_longer_suppresses(repo: Path) -> None:
    secret = key("project")
    (repo / "src" / "a.py").write_text(f'A = "{secret}"\n')
    assert run(["baseline", "create", "src"])[0] == 0
    doc = json.loads((repo / BASE).read_text())
    doc["findings"][0]["expires"] = str(dt.date.today() - dt.timedelta(days=1))
    (repo / BASE).write_text(json.dumps(doc))
    code, out, err = run(["scan", "--baseline", BASE, "src"])
    assert code == 1
    assert "expired on" in err and "no longer suppresses" in err
    assert secret not in out + err


def test_config_names_the_baseline_and_its_allows_are_not_recorded(repo: Path) -> None:
    allowed, real = key("project"), key("project")
    (repo / "src" / "a.py").write_text(f'A = "{real}"\n')
    (repo / "src" / "fixture.py").write_text(f'A = "{allowed}"\n')
    (repo / "src" / "inline.py").write_text(f'B = "{key("admin")}"  # keyscan:allow\n')
    (repo / ".keyscan.yaml").write_text('baseline: ci/known.json\nallow:\n  - path: "fixture"\n')
    (repo / "ci").mkdir()
    code, _, err = run(["baseline", "create", "src"])
    assert code == 0, err
    entries = json.loads((repo / "ci" / "known.json").read_text())["findings"]
    assert [e["fingerprint"] for e in entries] == [fingerprint_of(real)]
    # Scans use the config's baseline without being told.
    code, doc = scan_json(["src"])
    assert code == 0 and doc["scan"]["suppressed"] == 3


def test_incomplete_scan_writes_no_baseline(repo: Path) -> None:
    (repo / "src" / "a.py").write_text(f'A = "{key("project")}"\n')
    code, _, err = run(["baseline", "create", "src", "missing-folder"])
    assert code == 2 and "baseline not written" in err
    assert not (repo / BASE).exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "invalid JSON"),
        ('{"version": 1}', "a 'findings' list"),
        ('{"version": 9, "findings": []}', "version: expected 1"),
        (
            '{"version": 1, "findings": [{"rule_id": "r", "fingerprint": "x"}]}',
            "findings[0]: fingerprint",
        ),
        (
            '{"version": 1, "findings": [{"rule_id": "r", "fingerprint": "'
            + "a" * 64
            + '", "secret": "s"}]}',
            "unknown key(s) secret",
        ),
        (
            '{"version": 1, "findings": [{"rule_id": "r", "fingerprint": "'
            + "a" * 64
            + '", "identity": "b"}]}',
            "identity: does not match",
        ),
    ],
)
def test_bad_baseline_is_an_error(repo: Path, content: str, expected: str) -> None:
    (repo / "src" / "a.py").write_text("x = 1\n")
    (repo / BASE).write_text(content)
    code, out, err = run(["scan", "--baseline", BASE, "src"])
    assert code == 2 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith(f"keyscan: error: {BASE}") and expected in line


def test_missing_baseline_says_how_to_create_it(repo: Path) -> None:
    code, _, err = run(["scan", "--baseline", "nope.json", "src"])
    assert code == 2 and "keyscan baseline create" in err


def test_load_round_trip(tmp_path: Path) -> None:
    store = Baseline(tmp_path / "b.json")
    store.save()
    assert Baseline.load(tmp_path / "b.json").entries == {}
    (tmp_path / "c.json").write_text("[]")
    with pytest.raises(BaselineError):
        Baseline.load(tmp_path / "c.json")


def test_verified_live_key_is_shown_despite_baseline_and_config(
    tmp_path: Path, fake_state: Any, fake_server: Any
) -> None:
    """End to end, real HTTP to the fake OpenAI API: suppression never hides a live key."""
    import os
    import subprocess
    import sys

    live, dead, allowed_live = key("project"), key("project"), key("svcacct")
    project = fake_state.add_project("web")
    fake_state.add_key(live, "live", project_id=project.id)
    fake_state.add_key(dead, "deleted", project_id=project.id)
    fake_state.add_key(allowed_live, "live", project_id=project.id)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text(f'A = "{live}"\nB = "{dead}"\n')
    (src / "fixtures.py").write_text(f'C = "{allowed_live}"\n')
    (src / ".keyscan.yaml").write_text('allow:\n  - path: "fixtures"\n    reason: test keys\n')
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "KEYSCAN_CACHE_DIR")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), NO_COLOR="1")

    def keyscan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "keyscan", *args],
            cwd=src, capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    assert keyscan("baseline", "create", "--file", "../b.json", "a.py").returncode == 0
    # Without verification everything is suppressed.
    proc = keyscan("scan", "--baseline", "../b.json", "-f", "json", ".")
    assert proc.returncode == 0, proc.stderr
    proc = keyscan(
        "scan", "--verify", "--api-base", fake_server.base_url, "--baseline", "../b.json",
        "-f", "json", ".",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    shown = {f["fingerprint"]: f for f in doc["findings"]}
    assert set(shown) == {fingerprint_of(live), fingerprint_of(allowed_live)}
    for f in shown.values():
        assert "live-despite-suppression" in f["notes"]
        assert f["verification"]["status"] == "live"
    assert doc["scan"]["suppressed"] == 1  # the deleted key stays hidden
    for secret in (live, dead, allowed_live):
        assert secret not in proc.stdout + proc.stderr
