"""`python -m cnnlab COMMAND ...`: the lab's command-line tools.

Each command lives in its own module under `cnnlab.commands` with two functions:
`add_arguments(parser)` (must not import TensorFlow) and `run(args) -> int`.
Commands report bad input as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Modules are imported only when needed.
COMMANDS: dict[str, tuple[str, str]] = {
    "calc": ("cnnlab.commands.calc", "parameters, shapes, FLOPs and memory of a conv stack"),
    "train": ("cnnlab.commands.train", "train the MNIST / Fashion-MNIST CNN, one JSON line per epoch"),
    "classify": ("cnnlab.commands.classify", "top ImageNet classes of images with Inception v3"),
    "explain": ("cnnlab.commands.explain", "saliency maps, their faithfulness and a sanity check"),
    "fetch": ("cnnlab.commands.fetch", "download weights and datasets ahead of a lecture"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab",
        description="cnnlab command-line tools. Run `python -m cnnlab COMMAND --help` for one.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)  # a missing module is a bug: fail loudly
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if argv is None and len(sys.argv) == 1 else 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
