"""The project's command line: the text steps the pipeline scripts call, one subcommand each.

``python -m fairseq_vanilla COMMAND …``. Every command reads UTF-8, names the file and line of any problem, exits
non-zero on it (``error: …`` on stderr, exit status 1; 2 for a usage error), and writes its output to a temporary
name that it renames on success, so an interrupted run never leaves a half file behind. Each command is one row of
:data:`COMMANDS` (from ``text/commands.py`` and ``evaluation/commands.py``): its name, its arguments, the function it
calls and what it prints.
"""

import argparse
import sys

from .evaluation.commands import EVALUATION_COMMANDS
from .text.commands import TEXT_COMMANDS
from .text.io import PipelineError

COMMANDS = TEXT_COMMANDS + EVALUATION_COMMANDS


def build_parser() -> argparse.ArgumentParser:
    """One argparse subparser per row of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="python -m fairseq_vanilla", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="cmd", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help)
        for names, options in command.arguments:
            sub.add_argument(*names, **options)
        sub.set_defaults(command=command)
    return parser


def main(argv=None) -> int:
    """Run one command; bad input is one ``error: …`` line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        result = args.command.call(args)
    except (PipelineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.command.show is not None:
        print(args.command.show(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
