"""The ``cnntree`` command: one sub-command per job, one-line errors, exit status 2 on bad input.

Each command module (``spec_commands``, ``train_commands``, ``evaluate_commands``, ``predict_commands``,
``model_commands``, ``live_commands``)
declares its commands: a name, a help line, ``add_arguments`` and ``run``. A command parses, calls
one library function and prints; the work is in the library.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

from ..errors import CnnTreeError, Terminated
from ..log import to_standard_error
from . import evaluate_commands, live_commands, model_commands, predict_commands, spec_commands, train_commands

COMMANDS = [*spec_commands.COMMANDS, *train_commands.COMMANDS, *evaluate_commands.COMMANDS,
            *predict_commands.COMMANDS, *model_commands.COMMANDS, *live_commands.COMMANDS]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="cnntree", description="Hierarchical ensembles of CNNs for facial "
                                     "expression recognition.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors and the "
                        "backend's own start-up lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(command_class=command)
    return parser


def _terminate(signum, frame):
    raise Terminated()


def check_inputs(args) -> None:
    """Arguments that name models, data and files are checked before a backend loads, so a
    mistyped path answers at once: the command's own ``check`` (its outputs, images, spec), then
    the model reference and ``--data``."""
    from pathlib import Path

    from ..models import check_reference

    if (getattr(args, "abstain", False) or getattr(args, "hierarchy", None)) and not getattr(args, "coverage", None):
        raise CnnTreeError(f"--{'abstain' if getattr(args, 'abstain', False) else 'hierarchy'} goes with --coverage C")
    if getattr(args, "hierarchy", None):
        from ..spec import load_spec

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
    from ..backend import quiet_libraries

    quiet_libraries()
    to_standard_error()  # progress lines of the library (the cnntree logger) on standard error
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("CNNTREE_DEBUG") == "1"
    previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM ends runs as Ctrl-C does
    try:
        check_inputs(args)
        if getattr(args.command_class, "needs_backend", True):
            from ..backend import start

            start(debug)
        return args.command_class.run(args)
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
    finally:
        signal.signal(signal.SIGTERM, previous)
