"""The command-line flags of flood control (``flood.py``): ``-flood-rate N`` ... and
``-no-flood-control``.

Rules: every flag takes a positive, finite number and names a ``FloodConfig`` field; a bad
value is a ``ValueError`` that names the flag (``-flood-burst must be at least 1``), which
the CLI reports as a usage error.
"""

from __future__ import annotations

import argparse

from .flood import FloodConfig

_FLAGS = (
    ("flood-rate", "origin_rate", "N", "new messages a second from one sender, per connection"),
    ("flood-burst", "origin_burst", "N", "new messages at once from one sender, per connection"),
    ("flood-conn-rate", "conn_rate", "N", "messages a second accepted on one connection"),
    ("flood-conn-burst", "conn_burst", "N", "messages accepted at once on one connection"),
    ("flood-penalties", "penalty_limit", "N", "invalid or over-limit messages before a cut-off"),
    ("flood-blacklist", "blacklist_for", "SECONDS", "how long a flooder stays blacklisted"),
)


def add_flood_flags(parser: argparse.ArgumentParser) -> None:
    defaults = FloodConfig()
    for flag, name, metavar, text in _FLAGS:
        parser.add_argument(
            f"-{flag}",
            f"--{flag}",
            dest=name,
            type=float,
            default=getattr(defaults, name),
            metavar=metavar,
            help=f"{text} (default {getattr(defaults, name):g})",
        )
    parser.add_argument(
        "-no-flood-control",
        "--no-flood-control",
        action="store_true",
        help="no rate limits, penalties or blacklist (for benchmarks of raw relay capacity)",
    )


def flood_from_args(args: argparse.Namespace) -> FloodConfig | None:
    """The flood configuration the flags ask for; raises ValueError for a bad value."""
    if args.no_flood_control:
        return None
    values = {name: getattr(args, name) for _, name, _, _ in _FLAGS}
    for flag, name, _, _ in _FLAGS:
        if not values[name] > 0 or values[name] == float("inf"):
            raise ValueError(f"-{flag} must be a positive number")
    try:
        return FloodConfig(**values)
    except ValueError as exc:  # "origin_burst must be ...": say it with the flag's name
        for flag, name, _, _ in _FLAGS:
            if str(exc).startswith(f"{name} "):
                raise ValueError(f"-{flag}{str(exc)[len(name) :]}") from None
        raise


__all__ = ["add_flood_flags", "flood_from_args"]
