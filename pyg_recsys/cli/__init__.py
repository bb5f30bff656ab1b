"""The ``pyg-recsys`` command: argument parsing and dispatch.

``train`` trains a model of the name table (:mod:`pyg_recsys.cli.table`)
on a data set through its task's driver (:mod:`pyg_recsys.cli.tasks`),
into a run folder (:mod:`pyg_recsys.cli.run`); ``recommend`` reads a
finished run (``export`` and ``serve`` too, :mod:`pyg_recsys.cli.serve`);
``datasets`` lists the data sets and where each is found.
The options and the parser are in :mod:`pyg_recsys.cli.options`.

A user error (bad data, a bad option value, a run folder that is not a
run, a damaged file, a run folder in use) prints one line and exits with
status 1; ``--debug`` shows the traceback instead.  Every option is
checked before anything is written.
"""
from __future__ import annotations

import argparse
import logging
import sys

from pyg_recsys.cli.options import DEFAULTS, NEGATIVES, build_parser
from pyg_recsys.cli.run import COMMANDS as _RUN_COMMANDS
from pyg_recsys.cli.run import (
    USER_ERRORS,
    build_loader,
    build_model,
    load_data,
    load_dataset,
    resolve_defaults,
)
from pyg_recsys.cli.serve import COMMANDS as _SERVE_COMMANDS

#: command name -> function of its parsed arguments
COMMANDS = {**_RUN_COMMANDS, **_SERVE_COMMANDS}


def parse_train_args(argv: list[str]) -> argparse.Namespace:
    """The ``train`` options of ``argv`` (without ``'train'``), defaults
    resolved as the command resolves them (for scripts that build models
    through the name table)."""
    args = build_parser().parse_args(['train', *argv])
    resolve_defaults(args)
    return args


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format='%(asctime)s %(name)s %(message)s', stream=sys.stderr)
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as e:
        if args.debug:
            raise
        text = str(e).strip()
        message = text.splitlines()[0] if text else type(e).__name__
        if message.startswith('pyg-recsys '):
            raise SystemExit(message) from None
        raise SystemExit(f'pyg-recsys {args.command}: {message}') from None


__all__ = ['main', 'build_parser', 'parse_train_args', 'build_model',
           'build_loader', 'load_data', 'load_dataset', 'DEFAULTS',
           'NEGATIVES']
