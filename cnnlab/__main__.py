"""`python -m cnnlab COMMAND ...`: the lab's command-line tools.

Each command lives in its own module under `cnnlab.commands` with two functions:
`add_arguments(parser)` (must not import TensorFlow) and `run(args) -> int`.
Commands report bad input as one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import NoReturn

# name -> one-line help. Command NAME lives in cnnlab.commands.NAME, imported only when needed.
COMMANDS: dict[str, str] = {
    "calc": "parameters, shapes, FLOPs and memory of a conv stack",
    "train": "train the MNIST / Fashion-MNIST CNN, one JSON line per epoch",
    "classify": "top ImageNet classes of images with Inception v3",
    "explain": "saliency maps, their faithfulness and a sanity check",
    "fetch": "download weights and datasets ahead of a lecture",
    "recordings": "the recorded training runs the Train page replays",
}


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2, like every other refusal:
    `python -m cnnlab calc: argument --gpu: expected one argument (see --help)`."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(str(message).split())  # a value with a newline stays one line
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m cnnlab",
        description="cnnlab command-line tools. Run `python -m cnnlab COMMAND --help` for one.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"cnnlab.commands.{name}")  # missing: a bug, fail loudly
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


_NEGATIVE_VALUE = re.compile(r"^-(inf(inity)?|nan|\d|\.\d)", re.IGNORECASE)


def join_negative_values(argv: list[str]) -> list[str]:
    """`--gpu -inf` as `--gpu=-inf`: argparse reads "-inf" as an option, and the user
    should hear why the value is refused, not that it is missing."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] \
                and _NEGATIVE_VALUE.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_negative_values(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if argv is None and len(sys.argv) == 1 else 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
