"""``bench_web.py``'s relay-rate summary: medians, and ratios paired round by round.

A round runs each kind once, one after the other; the paired figure is the median over
rounds of each run's ratio to its round's base run, so that drift in the machine's load
between rounds cancels.
"""

from __future__ import annotations

import statistics


def paired(runs: list[dict], bases: list[dict], key: str) -> float:
    """The median over rounds of each round's ratio to its own base run, less one."""
    return statistics.median(r[key] / b[key] for r, b in zip(runs, bases, strict=True)) - 1


def report(results: dict[str, list[dict]], runs: int) -> None:
    base = results["no -http"]
    base_rate = statistics.median(r["e2e_rate"] for r in base)
    base_cpu = statistics.median(r["peer_us_per_msg"] for r in base)
    print("\nrelay rate, median of", runs, "runs (fresh peer each):")
    print("  (paired: the median over rounds of each round's ratio to that round's no -http)")
    for kind, got in results.items():
        rate = statistics.median(r["e2e_rate"] for r in got)
        cpu = statistics.median(r["peer_us_per_msg"] for r in got)
        print(
            f"  {kind:16} {rate:9,.0f} msgs/s ({rate / base_rate - 1:+.1%}, paired "
            f"{paired(got, base, 'e2e_rate'):+.1%})   peer CPU {cpu:5.1f} us/msg "
            f"({cpu / base_cpu - 1:+.1%}, paired {paired(got, base, 'peer_us_per_msg'):+.1%})"
        )
    feeds, plain = results["10 feeds"], results["-http, no feed"]
    print(
        f"  10 feeds against -http with no feed, paired: "
        f"{paired(feeds, plain, 'e2e_rate'):+.1%} msgs/s, "
        f"peer CPU {paired(feeds, plain, 'peer_us_per_msg'):+.1%}"
    )
