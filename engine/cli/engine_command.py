"""`dreamclear engine serve` (and `python -m engine`): run the engine process.

Over stdio (`--stdio`, how the desktop app starts it) requests come on stdin and events go to
stdout; otherwise it listens on TCP, 127.0.0.1 by default, and prints its port and the token a
client must send in `hello`. Logging always goes to stderr. See docs/protocol.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from engine.cli.common import add_store_option, print_error
from engine.errors import EngineError

DEFAULT_PORT = 7420
LOG_LEVELS = ("debug", "info", "warning", "error")


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0 (any free port) to 65535")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stdio",
        action="store_true",
        help="talk over stdin/stdout (for a parent process) instead of TCP",
    )
    parser.add_argument(
        "--host",
        default=None,
        metavar="H",
        help="address to listen on (default 127.0.0.1; another address is used only when "
        "named here, and is reachable by anyone who has the token)",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one and prints it)",
    )
    parser.add_argument(
        "--token",
        default=None,
        metavar="T",
        help="token clients must send in hello (default: a random one, printed at start)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        type=Path,
        default=None,
        metavar="DIR",
        help="over TCP, the folders clients may read images from and write results to "
        "(repeat for several; default: your home folder and the temporary folder); "
        "--stdio is the app's own engine and may use any path",
    )
    add_store_option(parser)
    parser.add_argument(
        "--log-level", default="info", choices=LOG_LEVELS, help="stderr logging (default info)"
    )
    parser.set_defaults(func=run)


def register(subparsers) -> None:
    parser = subparsers.add_parser("engine", help="run the engine process")
    verbs = parser.add_subparsers(dest="engine", metavar="VERB", required=True)
    serve = verbs.add_parser(
        "serve",
        help="serve restore jobs over stdio or TCP",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_serve_arguments(serve)


def run(args: argparse.Namespace) -> int:
    from engine.server import ServeConfig, serve

    if args.stdio and args.host is not None:
        print_error(EngineError("--stdio and --host exclude each other", hint="pick one"))
        return 2
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr)
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.setLevel(args.log_level.upper())
    config = ServeConfig(
        stdio=args.stdio,
        host=args.host or "127.0.0.1",
        port=args.port,
        token=args.token,
        allow_remote=args.host is not None,
        store_root=args.store,
        allow=args.allow,
    )
    try:
        return serve(config)
    except EngineError as error:
        print_error(error)
        return 2
    except KeyboardInterrupt:
        return 130
