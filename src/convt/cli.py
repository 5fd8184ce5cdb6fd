"""Command line: ``python -m convt demo [--output PATH] [--side N]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` and runs the chosen command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m convt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="upsample a picture and show the checkerboard")
    demo.add_argument("--output", default="convt_demo.png", help="PNG to write")
    demo.add_argument("--side", type=int, default=96, help="side of the input picture")
    args = parser.parse_args(argv)
    if args.side < 8:
        parser.error(f"--side must be at least 8. Received: side={args.side}")
    from convt import demo as demo_module

    demo_module.main(args.output, args.side)
    return 0
