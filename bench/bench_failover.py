"""Failover time: two ``segmon run`` replicas on PostgreSQL, ``kill -9`` the leader.

    python -m bench.bench_failover --runs 5

Starts two replicas on a private schema of the PostgreSQL server at ``--database-url``
(default ``$SEGMON_TEST_POSTGRES_URL``), then ``--runs`` times: wait a random delay
(seeded, uniform over one heartbeat, so the kill falls at a random point of the
standby's heartbeat; ``--phase worst`` kills right after the standby's check, the worst
case), kill -9 whichever leads, time until the other's ``/healthz`` says it leads
(polled every 50 ms), and restart the killed one as the new standby. Reports each
takeover and the median, with the configured heartbeat (``--heartbeat``, default the
production 5 s). Writes ``bench/results/bench_failover[_worst].json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench._common import print_table, write_results
from monitor.config import DEFAULT_CATEGORIES
from monitor.storage.bootstrap import init_database
from monitor.storage.engine import make_engine
from tests.support.replicas import Replica, start_replica


def _takeovers(
    url: str, workdir: Path, runs: int, heartbeat: float, phase: str, seed: int
) -> list[float]:
    rng = random.Random(seed)
    overrides = {"SEGMON_LEADER__HEARTBEAT_S": str(heartbeat)}
    pair = [start_replica(url, workdir, f"r{i}", overrides) for i in range(2)]
    times: list[float] = []
    try:
        for run in range(runs):
            leader, standby = (pair[0], pair[1]) if pair[0].leads() else (pair[1], pair[0])
            if not leader.leads():
                raise RuntimeError(f"no leader before run {run}:\n{leader.log_tail()}")
            # a fresh standby checked the lock as it started: killing now is the worst phase
            time.sleep(rng.uniform(0, heartbeat) if phase == "random" else 0.0)
            start = time.monotonic()
            leader.kill()
            while not standby.leads():  # bounded
                if time.monotonic() - start > 60:
                    raise RuntimeError(f"no takeover in 60 s:\n{standby.log_tail()}")
                time.sleep(0.05)
            times.append(time.monotonic() - start)
            print(f"run {run + 1}: takeover in {times[-1]:.2f} s", flush=True)
            fresh: Replica = start_replica(url, workdir, f"r{run}-restart", overrides)
            pair = [standby, fresh]
    finally:
        for replica in pair:
            if replica.proc.poll() is None:
                replica.kill()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--heartbeat", type=float, default=5.0, help="leader.heartbeat_s")
    parser.add_argument("--phase", choices=["random", "worst"], default="random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "SEGMON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    schema = f"segmon_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(args.database_url).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = (
        make_url(args.database_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        engine = make_engine(url)
        init_database(engine, DEFAULT_CATEGORIES)
        engine.dispose()
        with tempfile.TemporaryDirectory(prefix="segmon-failover-") as tmp:
            times = _takeovers(url, Path(tmp), args.runs, args.heartbeat, args.phase, args.seed)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    median = statistics.median(times)
    print_table(["run", "takeover_s"], [[i + 1, t] for i, t in enumerate(times)])
    print(f"median takeover: {median:.2f} s (heartbeat {args.heartbeat} s, {args.phase} phase)")
    write_results(
        "bench_failover" + ("_worst" if args.phase == "worst" else ""),
        {
            "command": f"python -m bench.bench_failover --runs {args.runs} "
            f"--heartbeat {args.heartbeat} --phase {args.phase} --seed {args.seed}",
            "heartbeat_s": args.heartbeat,
            "phase": args.phase,
            "takeover_s": [round(t, 3) for t in times],
            "median_takeover_s": round(median, 3),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
