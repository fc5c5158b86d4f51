"""Benchmarks: run one with ``python -m bench.NAME --help``."""

from __future__ import annotations

import pkgutil
from pathlib import Path

if __name__ == "__main__":
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    print("segmon benchmarks (not part of the test run); each writes bench/results/NAME.json:")
    for name in names:
        print(f"  python -m bench.{name} --help")
