"""Typed data, one error base, exit codes in one place, reports owning their helpers
(issue 12, items 4 and 5)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import keyscan
from keyscan.errors import KeyscanError


def _keyscan_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(keyscan.__path__, "keyscan."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_every_keyscan_exception_is_a_keyscan_error() -> None:
    own: dict[str, type[BaseException]] = {}
    for name in _keyscan_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__.startswith("keyscan.")
            ):
                own[f"{value.__module__}.{value.__qualname__}"] = value
    # The ones named in the issue, so that the walk above cannot silently find nothing.
    for expected in (
        "keyscan.rules.RuleError",
        "keyscan.config.ConfigError",
        "keyscan.baseline.BaselineError",
        "keyscan.privatefile.PrivateFileError",
        "keyscan.revoke.errors.AdminApiError",
        "keyscan.revoke.model.InputError",
        "keyscan.audit.store.StoreError",
        "keyscan.commands.ci.CiError",
        "keyscan.http.UnsafeBaseUrl",
    ):
        assert expected in own, sorted(own)
    assert len(own) >= 15, sorted(own)
    not_based = sorted(n for n, cls in own.items() if not issubclass(cls, KeyscanError))
    assert not_based == []
    # Ctrl-C / SIGTERM is not an error: a BaseException, so that ``except Exception`` (and
    # ``except KeyscanError``) never swallows it.
    from keyscan.interrupts import Interrupted

    assert not issubclass(Interrupted, Exception)


def test_error_bases_that_callers_catch_are_kept() -> None:
    from keyscan.baseline import BaselineError
    from keyscan.config import ConfigError
    from keyscan.http import AttemptTimeout, UnsafeBaseUrl
    from keyscan.privatefile import PrivateFileError
    from keyscan.rules import RuleError
    from keyscan.safejson import TooDeep

    for cls in (RuleError, ConfigError, BaselineError, UnsafeBaseUrl, TooDeep):
        assert issubclass(cls, ValueError)
    assert issubclass(PrivateFileError, OSError)
    assert issubclass(AttemptTimeout, TimeoutError)


# --- reports own their helpers ---------------------------------------------------------------


def test_report_package_does_not_import_the_pipeline() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import keyscan.report, keyscan.report.options\n"
        "for name in ('text', 'json_report', 'sarif', 'github', 'junit'):\n"
        "    __import__('keyscan.report.' + name)\n"
        "print('keyscan.pipeline' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_terminal_escaping_lives_in_one_module() -> None:
    from keyscan.terminal import safe

    defined = sorted(
        {
            f"{value.__module__}.{value.__qualname__}"
            for name in _keyscan_modules()
            for value in vars(importlib.import_module(name)).values()
            if inspect.isfunction(value) and value.__name__ == "safe"
        }
    )
    assert defined == ["keyscan.terminal.safe"]
    assert safe("a\x1b[31mb\u202e") == "a\\x1b[31mb\\u202e"


def test_output_options_belong_to_the_report_package() -> None:
    import keyscan.pipeline as pipeline
    from keyscan.report.options import OutputOptions

    assert OutputOptions.__module__ == "keyscan.report.options"
    assert pipeline.RunOptions().output == OutputOptions()
