"""``keyscan scan`` through the click-free door (issue 16): ``keyscan scan [PATH]...`` with
at most ``-q``/``--quiet`` and ``-f``/``--format FORMAT`` runs without importing click and
does exactly what click's ``keyscan scan`` does.

* The door's parameters are the ones click parses for the same command line.
* Every other command line (stdin ``-``, ``--``, any other option, a bundle, a format click
  refuses, ``--help``, shell completion) is left to click: help and usage errors unchanged.
* Both doors give the same output and exit code (a key, clean, several paths, a missing
  path, each format, quiet).
* The door imports no click; run as a program it skips the interpreter's teardown, never
  while worker processes ran; ``main(argv)`` still raises SystemExit.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from keyscan.commands.quick import DEFAULTS, parse
from keyscan.keygen import key
from keyscan.redaction import redact
from tests.test_small_jobs import SMALL_JOBS_NEVER, _exit_probe, _imports, _keyscan

DOOR_LINES = [
    [],
    ["."],
    ["src"],
    ["a.py", "sub/b.py", "c d.txt", "x=y"],
    ["-q"],
    ["--quiet", "src"],
    ["src", "-q"],
    ["-f", "json"],
    ["--format", "sarif", "a.py", "b.py"],
    ["a.py", "--format", "text", "--quiet"],
    ["-q", "-f", "jsonl", "src"],
    ["-f", "github"],
    ["--format", "junit"],
    ["-f", "json", "json"],  # a path called json after the value
]


@pytest.mark.parametrize("words", DOOR_LINES)
def test_scan_parameters_are_the_ones_click_parses(words: list[str]) -> None:
    from keyscan.commands.scan import scan

    line = parse(["scan", *words], {})
    assert line is not None and line.job == "scan"
    parsed = scan.make_context("scan", list(words)).params
    assert parsed.pop("paths") == line.files
    assert line.params == parsed
    assert set(line.params) == set(DEFAULTS)


def test_door_formats_are_clicks_choices() -> None:
    """Every format click offers goes through the door (and only those)."""
    from keyscan.commands.scan import scan

    option = next(p for p in scan.params if p.name == "fmt")
    choices = list(option.type.choices)  # type: ignore[attr-defined]
    for fmt in choices:
        line = parse(["scan", "-f", fmt], {})
        assert line is not None and line.params["fmt"] == fmt
    assert parse(["scan", "-f", "xml"], {}) is None


@pytest.mark.parametrize(
    "words, env",
    [
        (["-"], {}),
        (["a.py", "-"], {}),
        (["--", "a.py"], {}),
        ([""], {}),
        (["--help"], {}),
        (["-h"], {}),
        (["-q", "-q"], {}),
        (["-q", "--quiet"], {}),
        (["-qf", "json"], {}),
        (["-fjson"], {}),
        (["--format=json"], {}),
        (["-f"], {}),
        (["--format"], {}),
        (["-f", "JSON"], {}),
        (["-f", "-q"], {}),
        (["-f", "json", "-f", "text"], {}),
        (["-j", "1"], {}),
        (["--verify"], {}),
        (["--show-secrets"], {}),
        (["-o", "out.json"], {}),
        (["--no-config"], {}),
        (["--exclude", "*.py"], {}),
        (["--min-confidence", "high"], {}),
        (["--color", "never"], {}),
        ([], {"_KEYSCAN_COMPLETE": "bash_complete"}),
        (["a.py", "-q"], {"_KEYSCAN_COMPLETE": "zsh_complete"}),
    ],
)
def test_every_other_scan_line_is_clicks(words: list[str], env: dict[str, str]) -> None:
    assert parse(["scan", *words], env) is None


def _normalised(run: tuple[int, str, str]) -> tuple[int, str, str]:
    """The scan's duration is the only thing two runs may print differently."""
    code, out, err = run
    seconds = re.compile(r'("duration_seconds": |"duration": |time=")[0-9.e-]+')
    return code, seconds.sub(r"\1T", out), seconds.sub(r"\1T", err)


def _tree(tmp_path: Path) -> tuple[Path, str, str]:
    top = tmp_path / "work"
    (top / "src" / "deep").mkdir(parents=True)
    (top / "clean").mkdir()
    one, two = key("project"), key("svcacct")
    (top / "src" / "app.py").write_text(f'K = "{one}"\n')
    (top / "src" / "deep" / "conf.env").write_text(f"OPENAI_API_KEY={two}\nX=1\n")
    (top / "src" / "deep" / "same.txt").write_text(f"again {one}\n")
    (top / "clean" / "a.py").write_text("x = 1\n")
    (top / "json").write_text("{}\n")
    return top, one, two


def test_both_doors_say_the_same(tmp_path: Path) -> None:
    """The door's run against click's run of the same job (``--min-confidence low``, the
    default, sends the same line through click)."""
    top, one, two = _tree(tmp_path)
    cases: list[tuple[list[str], int]] = [
        ([], 1),
        (["src"], 1),
        (["clean"], 0),
        (["clean", "-q"], 0),
        (["-q", "src"], 1),
        (["src/app.py", "clean/a.py"], 1),
        (["missing.py"], 2),
        (["clean", "missing.py"], 2),
        (["-f", "json", "src"], 1),
        (["--format", "json", "clean", "--quiet"], 0),
        (["-f", "json", "json"], 0),
        (["-f", "sarif", "src"], 1),
        (["-f", "jsonl"], 1),
        (["-f", "github", "src"], 1),
        (["-f", "junit", "src"], 1),
    ]
    for words, expected in cases:
        quick = _normalised(_keyscan(["scan", *words], top))
        slow = _normalised(_keyscan(["scan", *words, "--min-confidence", "low"], top))
        assert quick[0] == expected, (words, quick)
        assert quick == slow, words
        both = quick[1] + quick[2]
        assert one not in both and two not in both, words
        if expected == 1:
            assert redact(one) in quick[1] or redact(two) in quick[1], words


def test_scan_never_imports_click(tmp_path: Path) -> None:
    top, _, _ = _tree(tmp_path)
    for words, expected in (([], 1), (["clean"], 0), (["-q", "-f", "json", "src"], 1)):
        code, modules = _imports(["scan", *words], top, tmp_path)
        assert code == expected and "keyscan.sources.files" in modules, words
        assert not SMALL_JOBS_NEVER & modules, (words, sorted(SMALL_JOBS_NEVER & modules))
    # Any other command line still gets click.
    code, modules = _imports(["scan", "-j", "1", "clean"], top, tmp_path)
    assert code == 0 and "click" in modules


# A probe's scan that hands its files to two forked workers (keyscan.sources.files), each
# fork recorded by the parent in the exit log.
WORKERS = (
    "import keyscan.sources.files as f; f.PARALLEL_MIN_BYTES_ACCELERATED = 0; "
    "f.PARALLEL_MIN_FILES = 0; f.HAND_OFF_MIN_FREE_CORES = -1e9; "
    "f.default_jobs = lambda: 2; "
    "os.register_at_fork(after_in_parent=lambda: (log.write('fork\\n'), log.flush())); "
)


def parent_lines(lines: list[str]) -> list[str]:
    """The exit log of a probe that scanned with WORKERS, less its workers' lines, once it
    shows that the scan forked its two workers. A worker that reads the pool's sentinel
    leaves through ``os._exit(0)`` (a line in the log, inherited with the probe's
    ``os._exit``); one that has not read it when the pool ends (``Pool.terminate``) is ended
    by the pool's SIGTERM and writes nothing: which one happens is a race between the pool's
    threads and its workers, so neither is required."""
    assert lines.count("fork") == 2, lines
    return [ln for ln in lines if ln not in ("fork", "os._exit 0")]


def test_scan_exits_without_the_teardown_a_library_call_keeps_it(tmp_path: Path) -> None:
    """Run as a program the door's scan ends with ``os._exit`` once atexit functions ran
    and the report was flushed; ``main(argv)`` raises SystemExit; click's door and a scan
    that started worker processes take the interpreter's normal exit."""
    top, one, _ = _tree(tmp_path)
    log = tmp_path / "exit.log"
    for call, expected in (
        ("sys.argv[1:] = ['scan', 'src']; main()", ["atexit", "os._exit 1"]),
        ("main(['scan', 'src'])", ["SystemExit 1", "atexit"]),
        ("sys.argv[1:] = ['scan', 'src', '-j', '1']; main()", ["SystemExit 1", "atexit"]),
        (WORKERS + "sys.argv[1:] = ['scan', 'src']; main()", ["SystemExit 1", "atexit"]),
    ):
        log.unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, "-c", _exit_probe(tmp_path, call)], cwd=top,
            capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert redact(one) in proc.stdout and "keyscan: 2 secrets in 3 l" in proc.stdout, (
            call, proc.stdout)  # fmt: skip
        lines = log.read_text().splitlines()
        if call.startswith(WORKERS):
            lines = parent_lines(lines)
        assert lines == expected, call


def test_scan_help_and_usage_errors_still_come_from_click(tmp_path: Path) -> None:
    code, out, err = _keyscan(["scan", "--help"], tmp_path)
    assert code == 0 and "Usage: keyscan scan" in out
    code, out, err = _keyscan(["scan", "-f", "xml"], tmp_path)
    assert code == 2 and "Invalid value for '--format'" in err
    code, out, err = _keyscan(["scan", "-f"], tmp_path)
    assert code == 2 and "requires an argument" in err
