"""``python -m forwarder.sandbox``: the sandbox CLI until ``forwarder sandbox`` is wired."""

from __future__ import annotations

import argparse
import sys

from forwarder.sandbox.cli import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m forwarder.sandbox")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
