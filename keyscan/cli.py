"""The ``keyscan`` command line. Subcommands are imported only when run (fast start-up); the
small jobs (``keyscan hook pre-commit``, ``keyscan git [--range A..B]``, ``keyscan scan
[PATH]...``) run without importing click at all (keyscan.commands.quick), every other
command line goes through click."""

from __future__ import annotations

import os
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from keyscan.version import __version__

if TYPE_CHECKING:
    import click

# name -> "module:attribute" of a click command. Add a line to add a command.
COMMANDS: dict[str, str] = {
    "scan": "keyscan.commands.scan:scan",
    "rules": "keyscan.commands.rules:rules",
    "verify": "keyscan.commands.verify:verify_cmd",
    "git": "keyscan.commands.git:git",
    "baseline": "keyscan.commands.baseline:baseline",
    "ci": "keyscan.commands.ci:ci",
    "hook": "keyscan.commands.hook:hook",
    "revoke": "keyscan.commands.revoke:revoke",
    "audit": "keyscan.commands.audit:audit",
    "report": "keyscan.commands.report:report",
    "exposure": "keyscan.commands.exposure:exposure",
}


@cache
def _group() -> click.Group:
    """The click group (built on first use: click is imported only then)."""
    import importlib

    import click

    class LazyGroup(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(COMMANDS)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            target = COMMANDS.get(cmd_name)
            if target is None:
                return None
            module_name, attr = target.split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command

    @click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, "--version", prog_name="keyscan")
    def cli() -> None:
        """Find, verify and revoke hardcoded OpenAI credentials in files and git history.

        Exit codes: 0 clean, 1 findings, 2 error (a partial scan never exits 0), 130 interrupted
        (Ctrl-C), 143 terminated (SIGTERM).
        """

    return cli


def __getattr__(name: str) -> Any:
    """``keyscan.cli.cli``: the click group, built when asked for."""
    if name == "cli":
        return _group()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


INTERRUPTED = "keyscan: interrupted: scan incomplete"


def main(argv: list[str] | None = None) -> Any:
    """The entry point. Ctrl-C and SIGTERM become an exception (keyscan.interrupts), so that
    temporary clones are removed, workers terminated and git processes killed on the way
    out; then one line and exit 130 (SIGINT) or 143 (SIGTERM). No report is written."""
    from keyscan.commands.quick import door, run
    from keyscan.exitcodes import EXIT_INTERRUPTED
    from keyscan.interrupts import Interrupted, signals_raise

    job = door(sys.argv[1:] if argv is None else list(argv), os.environ)
    with signals_raise():
        try:
            if job is not None:
                run(job, fast_exit=argv is None)
            return _group().main(args=argv, prog_name="keyscan")
        except (Interrupted, KeyboardInterrupt) as exc:
            # Further signals stay ignored until the exit (keyscan.interrupts).
            plumbing = sys.modules.get("keyscan.git.plumbing")
            if plumbing is not None:
                plumbing.kill_running()  # any git process that no finally block stopped
            from keyscan.cli_common import echo_err

            echo_err(INTERRUPTED)
            sys.exit(exc.exit_code if isinstance(exc, Interrupted) else EXIT_INTERRUPTED)
