"""Command line: ``python -m convt demo [--output PATH] [--side N] [--train-steps N]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


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
    from convt import demo as demo_module
    from convt import demo_train

    if not demo_module.MIN_SIDE <= args.side <= demo_module.MAX_SIDE:
        demo.error(f"--side must be from {demo_module.MIN_SIDE} to {demo_module.MAX_SIDE} (the "
                   f"sample photograph's shorter side). Received: side={args.side}")
    if args.train_steps < 0:
        demo.error(f"--train-steps must be >= 0. Received: train_steps={args.train_steps}")
    for option, path in (("--output", args.output), ("--train-output", args.train_output)):
        problem = _unwritable_png(Path(path))
        if problem:
            demo.error(f"{option} must name a .png file in an existing directory; {problem}. "
                       f"Received: {option}={path!r}")

    demo_module.main(args.output, args.side)
    if args.train_steps:
        demo_train.main(args.train_output, args.train_steps)
    return 0


def _unwritable_png(path: Path) -> str | None:
    """Why ``path`` cannot receive a PNG, checked before any work; None when it can."""
    if path.suffix.lower() != ".png":
        return "it does not end in .png"
    if path.is_dir():
        return "it is a directory"
    if not path.resolve().parent.is_dir():
        return "its directory does not exist"
    return None
