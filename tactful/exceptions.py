"""Tactful's errors, sorted by what the caller should do, and the exit status each gives on
the command line (docs/cli.md#exit-status).

Every error Tactful raises on purpose derives from :class:`TactfulError`; its message says
what went wrong and, where it can, what to do. The errors of one part live with that part
(``ConfigError`` in ``tactful.config``, ``StoreError`` in ``tactful.store.base``, …) and
derive from one of the kinds here:

| kind | the caller should | exit | for example |
|---|---|---|---|
| :class:`UsageError` | fix the command line | 2 | a ``--now`` that is not a time |
| :class:`InvalidConfig` | fix the configuration file | 1 | ``ConfigError`` |
| :class:`InvalidInput` | fix the input it gave | 1 | ``ParseError``, ``ReportError`` |
| :class:`CommandError` | read why the command cannot do its job | 1 | no store to read yet |
| :class:`NeedsOperator` | act on the machine (disk, rights, URL) | 1 | ``StoreError`` |
| :class:`ServiceError` | check the outside service (credentials, status) | 1 | ``ZendeskError`` |
| :class:`TryAgain` | run the same thing again: nothing was done | 75 | ``StoreConflict`` |

The pure core (``tactful.core``) imports nothing outside itself, so its ``RuleError`` stays a
plain exception; the commands that parse rules turn it into an ``InvalidInput``.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TRY_AGAIN = 75  # sysexits.h EX_TEMPFAIL: a temporary failure, run again
EXIT_INTERRUPTED = 130  # 128 + SIGINT


class TactfulError(Exception):
    """An error Tactful raises on purpose; ``exit_code`` is the command line's status."""

    exit_code: ClassVar[int] = EXIT_FAILED


class InvalidConfig(TactfulError):
    """The configuration is wrong: fix the file (or the environment it reads)."""


class InvalidInput(TactfulError):
    """What was given to read (a file, a rule, a window) is wrong: fix it and run again."""


class CommandError(TactfulError):
    """A command cannot do its job; the message says why."""


class UsageError(CommandError):
    """The command line itself is wrong (a flag's value cannot be read)."""

    exit_code = EXIT_USAGE


class NeedsOperator(TactfulError):
    """The machine stands in the way (disk full, read-only, unreachable database)."""


class ServiceError(TactfulError):
    """A service outside Tactful refused or failed (credentials, permissions, outage)."""


class TryAgain(TactfulError):
    """A transient conflict: nothing was done, and running the same work again is safe."""

    exit_code = EXIT_TRY_AGAIN


def exit_code(exc: BaseException) -> int:
    """The command line's exit status for ``exc``."""
    if isinstance(exc, TactfulError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILED
