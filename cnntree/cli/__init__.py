"""The ``cnntree`` command: one sub-command per job, one-line errors, exit status 2 on bad input.

``registry.REGISTRY`` lists the commands; the one that runs is imported, given its arguments,
checked, and run; its result is printed here, as text (the command's ``text``) or, with
``--json``, as JSON. A command parses, calls one library function and returns what it found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import traceback
from pathlib import Path

from ..backend import exit_promptly, quiet_libraries, start
from ..errors import CnnTreeError, Terminated
from ..interrupts import handled
from ..log import to_standard_error
from ..models import check_reference
from ..spec import load_spec
from .registry import REGISTRY


def chosen(argv: list[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: every command's name and help, and the arguments of the one ``argv``
    names (of every command when ``argv`` is None)."""
    parser = argparse.ArgumentParser(prog="cnntree", description="Hierarchical ensembles of CNNs for facial "
                                     "expression recognition.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors and the "
                        "backend's own start-up lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    name = None if argv is None else chosen(argv)
    for command in REGISTRY:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if argv is None or command.name == name:
            implementation = command.load()
            implementation.add_arguments(p)
            p.set_defaults(command_class=implementation, backend=command.backend)
    return parser


def check_inputs(args) -> None:
    """Arguments that name models, data and files are checked before a backend loads, so a
    mistyped path answers at once: the command's own ``check`` (its outputs, images, spec), then
    the model reference and ``--data``."""
    if (getattr(args, "abstain", False) or getattr(args, "hierarchy", None)) and not getattr(args, "coverage", None):
        raise CnnTreeError(f"--{'abstain' if getattr(args, 'abstain', False) else 'hierarchy'} goes with --coverage C")
    if getattr(args, "hierarchy", None):
        load_spec(args.hierarchy)
    if hasattr(args.command_class, "check"):
        args.command_class.check(args)
    if getattr(args, "model_dir", None):
        check_reference(args.model_dir)
    data = getattr(args, "data", None)
    if isinstance(data, str) and data != "sample" and not Path(data).exists():
        raise CnnTreeError(f"{Path(data).absolute()}: no such file or folder")


def main(argv=None) -> int:
    """Run ``cnntree argv``; returns the exit status (0, 2 for bad input, 1 internal, 130/143 stopped)."""
    quiet_libraries()
    to_standard_error()  # progress lines of the library (the cnntree logger) on standard error
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    debug = args.debug or os.environ.get("CNNTREE_DEBUG") == "1"
    try:
        with handled():  # SIGTERM ends runs as Ctrl-C does; neither lands inside a store write
            check_inputs(args)
            if args.backend:
                start(debug)
            result = args.command_class.run(args)
        if result is not None:
            print(json.dumps(result, indent=2) if getattr(args, "json", False) else args.command_class.text(result))
        return 0
    except CnnTreeError as error:
        print(f"cnntree: error: {error}", file=sys.stderr)
        return 2
    except MemoryError:  # an input larger than this machine holds: refused like any bad input
        print("cnntree: error: out of memory: the input is larger than this machine can hold "
              "(a smaller data set, or --skip-bad to find a runaway row)", file=sys.stderr)
        return 2
    except BrokenPipeError:  # a reader that stopped reading (| head): end quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print(f"cnntree: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except Exception as error:  # an internal error: one line, traceback on request
        if debug:
            traceback.print_exc()
        print(f"cnntree: internal error: {type(error).__name__}: {error} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


def run() -> None:
    """The ``cnntree`` program: :func:`main`, then, once a command has loaded the backend, an exit
    that skips the interpreter's teardown of its objects (:func:`cnntree.backend.exit_promptly`:
    nothing is lost, threads and exit handlers run first)."""
    code = main()
    if "keras" not in sys.modules or not hasattr(threading, "_shutdown"):
        sys.exit(code)
    exit_promptly(code)
