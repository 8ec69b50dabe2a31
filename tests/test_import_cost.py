"""What a clean pre-commit hook run imports and builds (issue 16, the hook's last milliseconds).

* The classes every run imports are built by ``keyscan.records`` (no ``dataclasses``, hence no
  ``inspect``/``ast``/``dis``/``tokenize`` on a clean hook run): each is compared here with the
  real dataclass of the same class body (fields, params, ``__init__`` defaults and factories,
  repr, equality, hashing, frozenness, ``__doc__``, ``__match_args__``) and stays a dataclass
  for ``dataclasses.fields/replace/asdict/is_dataclass``.
* A clean hook run (a staged file without a key) imports none of the modules listed in
  ``CLEAN_HOOK_NEVER``; a hook run that finds a key still reports it.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import keyscan.cli_common
import keyscan.content
import keyscan.findings
import keyscan.formats.decoders
import keyscan.git.history
import keyscan.git.options
import keyscan.git.plumbing
import keyscan.git.provenance
import keyscan.git.scope
import keyscan.models
import keyscan.pipeline
import keyscan.report.options
import keyscan.sources.files
from keyscan import records
from keyscan.keygen import key
from keyscan.models import Confidence, Finding, Location, Rule, ScanResult, Verification
from keyscan.redaction import redact
from keyscan.rules import CACHE_NAME, load_rules
from tests.git_helpers import Repo

MODULES = [
    keyscan.models,
    keyscan.findings,
    keyscan.formats.decoders,
    keyscan.content,
    keyscan.report.options,
    keyscan.pipeline,
    keyscan.cli_common,
    keyscan.git.options,
    keyscan.git.plumbing,
    keyscan.sources.files,
    keyscan.git.scope,
    keyscan.git.provenance,
    keyscan.git.history,
]


def _record_classes() -> list[type]:
    found = []
    for module in MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and value in records._RECORDS
            ):
                found.append(value)
    return found


RECORD_CLASSES = _record_classes()


def _real_twin(cls: type) -> type:
    """The class body of ``cls`` run again with ``dataclasses.dataclass``."""
    module = sys.modules[cls.__module__]
    namespace = dict(vars(module))
    namespace.update(dataclass=dataclasses.dataclass, field=dataclasses.field)
    for base in cls.__mro__[1:]:
        if base in records._RECORDS:
            namespace[base.__name__] = _real_twin(base)
    exec(textwrap.dedent(inspect.getsource(cls)), namespace)
    twin: type = namespace[cls.__name__]
    return twin


def test_the_hook_path_classes_are_records() -> None:
    names = {c.__name__ for c in RECORD_CLASSES}
    assert {"Rule", "Match", "Finding", "Location", "ScanResult", "ScanError"} <= names
    assert {"Hit", "HitSink", "FileScan", "GitRepo", "GitScanOptions", "RunContext"} <= names
    assert len(RECORD_CLASSES) == 32


def _arguments(cls: type) -> dict[str, Any]:
    """A value for every field without a default (distinct, comparable, hashable)."""
    special = {"status": "live"}  # Verification.__post_init__ parses it
    return {
        f.name: special.get(f.name, f"value of {f.name}")
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda c: c.__qualname__)
def test_record_is_the_dataclass_of_its_body(cls: type) -> None:
    twin = _real_twin(cls)
    assert dataclasses.is_dataclass(cls)
    assert dataclasses.is_dataclass(twin)
    ours, theirs = dataclasses.fields(cls), dataclasses.fields(twin)
    assert [f.name for f in ours] == [f.name for f in theirs]
    for mine, real in zip(ours, theirs, strict=True):
        for attr in ("type", "default", "default_factory", "init", "repr", "hash", "compare"):
            assert getattr(mine, attr) == getattr(real, attr), (mine.name, attr)
    assert repr(vars(cls)["__dataclass_params__"]) == repr(vars(twin)["__dataclass_params__"])
    assert cls.__match_args__ == twin.__match_args__  # type: ignore[attr-defined]
    assert cls.__doc__ == twin.__doc__
    assert str(inspect.signature(cls)) == str(inspect.signature(twin))
    assert cls.__init__.__annotations__ == twin.__init__.__annotations__  # type: ignore[misc]
    assert (cls.__hash__ is None) == (twin.__hash__ is None)
    params = vars(twin)["__dataclass_params__"]

    args = _arguments(cls)
    a, b, c = cls(**args), cls(**args), twin(**args)
    assert repr(a) == repr(c)
    assert a == b and a is not b and (a == c) is False
    assert dataclasses.asdict(a) == dataclasses.asdict(c)
    assert dataclasses.astuple(a) == dataclasses.astuple(c)
    # Class attributes: defaults kept, factories and fields without default removed.
    for f in ours:
        assert (f.name in vars(cls)) == (f.name in vars(twin)), f.name
        if f.name in vars(cls):
            assert vars(cls)[f.name] == vars(twin)[f.name]
    for f in ours:
        if not f.compare or not args or f.name == "status":
            continue
        changed = dataclasses.replace(a, **{f.name: "other"})
        assert changed != a and records.replace(a, **{f.name: "other"}) == changed
        break
    if params.frozen:
        assert hash(a) == hash(b) == hash(c)
        name = ours[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(a, name, "x")
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(a, name)
    else:
        with pytest.raises(TypeError):
            hash(a)
    assert copy.copy(a) == a and copy.deepcopy(a) == a
    assert pickle.loads(pickle.dumps(a)) == a


def test_signature_of_a_record_not_built_yet() -> None:
    """Asking for a method (inspect.signature, cls.__init__) builds the methods: the stub is
    never seen."""
    code = textwrap.dedent(
        """
        import inspect
        from keyscan import records
        from keyscan.models import Finding
        assert not records._RECORDS[Finding].built
        print(inspect.signature(Finding))
        assert records._RECORDS[Finding].built
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("(rule_id: 'str', family: 'str', confidence: 'Confidence'")
    assert out.rstrip().endswith("more_allowed: 'int' = 0) -> None")


def test_records_code_is_generated_from_the_records() -> None:
    """keyscan/_records_code.py holds the methods of exactly these classes: regenerate it
    (``python -c 'import sys, tests.test_import_cost as t, keyscan.records as r;
    sys.stdout.write(r.generated_module(t.RECORD_CLASSES))' > keyscan/_records_code.py``)
    after changing a record's fields."""
    path = Path(records.__file__).with_name("_records_code.py")
    assert path.read_text(encoding="utf-8") == records.generated_module(RECORD_CLASSES)


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda c: c.__qualname__)
def test_record_methods_come_byte_compiled(cls: type) -> None:
    record = records._RECORDS[cls]
    record.build()
    assert record.precompiled
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


def test_a_changed_record_is_compiled_at_run_time() -> None:
    @records.dataclass(frozen=True)
    class Changed:
        a: int
        b: list[int] = records.field(default_factory=list)

    one = Changed(1)
    assert not records._RECORDS[Changed].precompiled and one == Changed(1, [])
    assert repr(one).endswith("Changed(a=1, b=[])")


def test_records_keep_post_init_factories_and_positional_order() -> None:
    assert Verification("live").status.is_live  # type: ignore[arg-type]
    a, b = ScanResult("files", []), ScanResult("files", [])
    assert a.findings is not b.findings and a == b
    location = Location("p", 1, 2, 3)
    assert location.extra == {} and location.extra is not Location("p", 1, 2, 3).extra
    finding = Finding("r", "f", Confidence.HIGH, "fp", "red", 4, "secret")
    assert "secret" not in repr(finding)  # repr=False
    assert finding == dataclasses.replace(finding, secret="other")  # compare=False
    rule = load_rules(cache_path=False)[0]
    assert dataclasses.replace(rule) == rule and hash(dataclasses.replace(rule)) == hash(rule)
    with pytest.raises(TypeError):
        Rule()  # type: ignore[call-arg]


def test_a_record_that_holds_itself_repr_s_as_dataclasses_does() -> None:
    result = ScanResult("files", [])
    result.stats["self"] = result
    assert repr(result).count("...") == 1


def test_unsupported_definitions_fail_loudly() -> None:
    with pytest.raises(TypeError, match="non-default argument"):

        @records.dataclass
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]

    with pytest.raises(ValueError, match="mutable default"):

        @records.dataclass
        class Mutable:
            a: list[int] = []  # noqa: RUF012  # type: ignore[misc]


CLEAN_HOOK_NEVER = {
    "dataclasses",
    "inspect",
    "ast",
    "dis",
    "tokenize",
    "linecache",
    # pathlib pulls urllib.parse and ipaddress (~2.5 ms): rules and config lookup use
    # os.path on the way every run takes.
    "pathlib",
    "urllib.parse",
    "ipaddress",
    # The pack reader (and mmap, dulwich, isal): a scan of every ref only (~2 ms).
    "keyscan.git.packs",
    "mmap",
    "dulwich",
    "isal",
}


def _hook_modules(
    tmp_path: Path, content: str, argv: tuple[str, ...] = ("hook", "pre-commit")
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    repo = Repo(tmp_path / "repo")
    if argv[0] == "git":  # a range of three commits
        for i in range(3):
            repo.commit(f"c{i}", (f"m{i}.py", content))
    repo.write("a.py", content)
    repo.git("add", "a.py")
    out = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        "def modules():\n"
        "    lazy = sorted(\n"
        "        f'{m.__name__}.{k}' for m in list(sys.modules.values())\n"
        "        if getattr(m, '__name__', '').startswith('keyscan')\n"
        "        for k, v in vars(m).items() if type(v).__name__ == '_LazyPattern'\n"
        "    )\n"
        "    return sorted(sys.modules) + ['lazy:' + name for name in lazy]\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(modules())))\n"
        "from keyscan.cli import main\n"
        f"main({list(argv)!r})\n"
    )
    env = {**os.environ, "KEYSCAN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KEYSCAN_RULE_CACHE", None)
    load_rules(cache_path=tmp_path / "cache" / CACHE_NAME)  # warm
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo.path, env=env, capture_output=True, text=True
    )
    return proc, set(json.loads(out.read_text()))


def _bare_interpreter_modules() -> set[str]:
    """What this Python imports before any code runs (3.13's start-up imports linecache):
    only what keyscan adds counts."""
    out = subprocess.run(
        [sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return set(out.split())


def test_clean_hook_run_never_imports_dataclasses(tmp_path: Path) -> None:
    proc, modules = _hook_modules(tmp_path, "def f(x):\n    return x + 1\n" * 50)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "keyscan.git.staged" in modules and "keyscan.models" in modules
    added = modules - _bare_interpreter_modules()
    assert not CLEAN_HOOK_NEVER & added, sorted(CLEAN_HOOK_NEVER & added)


def test_clean_range_scan_never_imports_dataclasses(tmp_path: Path) -> None:
    """``keyscan git --range`` (a pull request's commits): the history, scope and provenance
    records are keyscan.records too, so the range's start-up pays no dataclasses/inspect."""
    proc, modules = _hook_modules(
        tmp_path, "def f(x):\n    return x + 1\n" * 50, ("git", "--range", "HEAD~2..HEAD", ".")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "keyscan.git.history" in modules and "keyscan.git.scope" in modules
    added = modules - _bare_interpreter_modules()
    assert not CLEAN_HOOK_NEVER & added, sorted(CLEAN_HOOK_NEVER & added)
    # Nor what only a staged scan or a tree with a keyword in its names needs.
    assert not {"keyscan.git.staged", "keyscan.sources.files"} & modules


# Compiled on first use (keyscan.lazypattern): a clean hook run needs none of them.
CLEAN_HOOK_NEVER_COMPILES = {
    "keyscan.formats.decoders._PERCENT_TRIGGER",
    "keyscan.formats.decoders._B64_RUN",
    "keyscan.formats.decoders._HEX_TRIGGER",
    "keyscan.formats.decoders._QP_SOFT_BREAK",
    "keyscan.openai_facts.AZURE_HOST",
    "keyscan.openai_facts._AZURE_MENTION",
    "keyscan.terminal._UNSAFE",
}


def test_clean_hook_run_compiles_no_pattern_it_does_not_use(tmp_path: Path) -> None:
    proc, modules = _hook_modules(tmp_path, "def f(x):\n    return x + 1\n" * 50)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lazy = {name.removeprefix("lazy:") for name in modules if name.startswith("lazy:")}
    assert lazy >= CLEAN_HOOK_NEVER_COMPILES, sorted(CLEAN_HOOK_NEVER_COMPILES - lazy)


def test_lazy_patterns_are_bound_to_their_names() -> None:
    """Every stand-in names the global it is bound to (else the compiled pattern would land
    elsewhere), compiles to ``re.compile``'s pattern and then replaces itself."""
    code = textwrap.dedent(
        """
        import re, sys
        import keyscan.formats.decoders, keyscan.openai_facts, keyscan.terminal
        from keyscan.lazypattern import _LazyPattern
        n = 0
        for m in (keyscan.formats.decoders, keyscan.openai_facts, keyscan.terminal):
            for name, value in list(vars(m).items()):
                if isinstance(value, _LazyPattern):
                    assert value._name == name, (m.__name__, name)
                    compiled = value.compiled()
                    assert vars(m)[name] is compiled and isinstance(compiled, re.Pattern)
                    assert compiled is re.compile(value._pattern, value._flags)
                    assert value.pattern == compiled.pattern and value.search is not None
                    n += 1
        print(n)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert int(out) == 20


def test_a_replaced_pattern_is_not_overwritten_by_its_stand_in() -> None:
    from keyscan.lazypattern import lazy_compile

    namespace: dict[str, Any] = {}
    namespace["P"] = stand_in = lazy_compile(namespace, "P", rb"a+")
    namespace["P"] = "patched"
    assert stand_in.fullmatch(b"aaa") is not None and namespace["P"] == "patched"


def test_hook_run_with_a_key_still_reports_it(tmp_path: Path) -> None:
    secret = key("project")
    proc, _ = _hook_modules(tmp_path, f'K = "{secret}"\n')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert redact(secret) in out and secret not in out


def test_the_redactor_shares_what_the_scan_derived_from_the_same_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A report's metadata redactor over the scan's rules derives nothing again (keyword
    plan, filter segments): it was ~0.2 ms of a clean hook run. Same answers."""
    from keyscan import detector as detector_module
    from keyscan.detector import Detector
    from keyscan.redaction import Redactor

    built: list[str] = []
    real_plan, real_filters = (
        detector_module._KeywordPlan.__init__,
        detector_module._filter_segments,
    )

    def plan(self: Any, keywords: Any) -> None:
        built.append("plan")
        real_plan(self, keywords)

    def filters(rules: Any) -> Any:
        built.append("filters")
        return real_filters(rules)

    monkeypatch.setattr(detector_module._KeywordPlan, "__init__", plan)
    monkeypatch.setattr(detector_module, "_filter_segments", filters)
    rules = load_rules(cache_path=False)
    scan = Detector(rules)
    assert sorted(built) == ["filters", "plan"]
    secret = key("project")
    text = f"path/{secret}/x.py"
    assert Redactor(rules).text(text) == f"path/{redact(secret)}/x.py"
    assert Redactor(list(rules)).text(text) == f"path/{redact(secret)}/x.py"
    assert sorted(built) == ["filters", "plan"]  # shared, not built again
    assert [m.secret for m in scan.scan(text.encode())] == [secret.encode()]
    other = load_rules(cache_path=False)  # other rule objects: derived anew
    assert Redactor(other).text(text) == f"path/{redact(secret)}/x.py"
    assert sorted(built) == ["filters", "filters", "plan", "plan"]
