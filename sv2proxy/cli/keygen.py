"""``sv2proxy-keygen``: create an authority secret key file and print its public key.

The public key (base58check, PROTOCOL.md §5.4) goes to stdout alone so that
scripts can capture it; notes and errors go to stderr.  Exit status: 0 done,
1 the file could not be created or read, 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sv2proxy.authority import (
    AuthorityKeyFileError,
    create_secret_key_file,
    load_secret_key_file,
)

PROG = "sv2proxy-keygen"
EXIT_OK = 0
EXIT_FAILURE = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Create a Stratum V2 authority secret key file (mode 0600) and print its "
            "public key, the one miners pin. An existing file is never overwritten."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="the secret key file to create")
    parser.add_argument(
        "--show",
        action="store_true",
        help="print the public key of the existing file PATH instead of creating one",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.show:
            key = load_secret_key_file(args.path)
        else:
            key = create_secret_key_file(args.path)
    except AuthorityKeyFileError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    if not args.show:
        print(
            f"{PROG}: wrote the authority secret key to {args.path} (mode 0600); "
            "keep it private and back it up. Public key:",
            file=sys.stderr,
        )
    print(key.public_text)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
