"""Errors that a fairseq command reports as one line, ``error: …``, where they are raised; no traceback, no hook.

fairseq's command-line entry points (``fairseq-train``, ``fairseq-generate``, …) catch nothing: an exception that
leaves ``main`` reaches Python's top level, which prints a traceback, except for :class:`SystemExit`, whose ``code``
it prints as it is and exits with status 1. :class:`OneLineError` is both: an ``Exception`` (a library caller's
``except Exception`` or ``except CheckpointError`` catches it as usual) and a ``SystemExit`` whose ``code`` is the
line ``error: <message>`` (left uncaught, the command ends with that one line). ``str(error)`` is the message alone.
Not a repair: the base class the repairs and the plugin raise.
"""


class OneLineError(RuntimeError, SystemExit):
    """An error whose message is the whole story: uncaught, a command prints ``error: <message>`` and exits 1."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = f"error: {message}"  # what Python's top level prints for an uncaught SystemExit

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class FlagError(OneLineError, ValueError):
    """A flag value its rule forbids, raised where the rule lives (model config checks, criteria, LR schedulers).

    A ``ValueError`` for library callers (``except ValueError``), one line ``error: --flag …`` for a command."""


def check_fraction(flag: str, value: float) -> float:
    """``value`` when 0 ≤ value < 1 (a dropout rate, ε_ls, an augmentation probability), else a :class:`FlagError`
    ``--flag must be in [0, 1), got value``; ``flag`` is the flag or its config field's name (``pooler_dropout``)."""
    if not 0.0 <= value < 1.0:
        raise FlagError(f"--{flag.lstrip('-').replace('_', '-')} must be in [0, 1), got {value}")
    return value
