"""Command line: ``python -m convt demo [--output PATH] [--side N] [--train-steps N]``."""

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
    demo.add_argument("--train-steps", type=int, default=6000,
                      help="steps of the digit generator's training (torch); 0 skips it")
    demo.add_argument("--train-output", default="convt_digits.png", help="its PNG")
    args = parser.parse_args(argv)
    if args.side < 8:
        parser.error(f"--side must be at least 8. Received: side={args.side}")
    if args.train_steps < 0:
        parser.error(f"--train-steps must be >= 0. Received: train_steps={args.train_steps}")
    from convt import demo as demo_module
    from convt import demo_train

    demo_module.main(args.output, args.side)
    if args.train_steps:
        demo_train.main(args.train_output, args.train_steps)
    return 0
