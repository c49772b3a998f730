"""The fault suite, long: every scenario of `tests/support/faults/scenarios.py`, more load, longer.

Run `python -m bench.faults --help`. It starts a PostgreSQL cluster and a Mosquitto
of its own (free loopback ports, a temporary directory, both stopped at the end),
runs iotledger as one process per role (and as one `serve` where the scenario says
so), loads it over MQTT (QoS 1) and REST at once, injects each fault, and prints
one row per scenario and channel: what was acknowledged, what the readings read
model holds of it, what was lost or stored twice, how long errors lasted (first to
last failed request/publish) and when the last one came relative to recovery, how
long after the load stopped everything acknowledged was queryable, and the promise.
`pytest -m faults` runs the same scenarios, short.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.mqtt_readings import print_table
from tests.support.faults.cluster import cluster, has_mosquitto
from tests.support.faults.scenarios import LONG, SCENARIOS, SHORT, Outcome, Report, deployment, run
from tests.support.faults.system import ROLES, system

HEADER = (
    "scenario",
    "channel",
    "acknowledged",
    "stored",
    "lost",
    "duplicates",
    "error window",
    "last error after recovery",
    "queryable after",
    "promise",
    "verdict",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description="Run every fault scenario under load and count what survived.",
    )
    p.add_argument("--only", action="append", default=[], help="scenarios whose name has this")
    p.add_argument("--short", action="store_true", help="the CI sizes (a few seconds each)")
    return p


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def verdict(report: Report) -> str:
    broken = report.violations()
    if not broken:
        return "met"
    known = report.scenario.known_bug
    return f"MISSED ({known.split(':')[0]})" if known else "MISSED"


def rows(report: Report) -> list[tuple[str, ...]]:
    return [
        row(report, o, report.scenario.promise(report.size) if n == 0 else "", verdict(report), n)
        for n, o in enumerate(report.outcomes)
    ]


def row(report: Report, o: Outcome, promise: str, verdict: str, n: int) -> tuple[str, ...]:
    return (
        report.scenario.name if n == 0 else "",
        o.channel,
        f"{o.acknowledged:,}",
        f"{o.stored:,}",
        f"{o.lost:,}",
        f"{o.duplicates:,}",
        seconds(o.error_window),
        seconds(o.errors_after_recovery),
        seconds(report.settled) if n == 0 else "",
        promise,
        verdict if n == 0 else "",
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if not has_mosquitto():
        raise SystemExit("bench.faults needs mosquitto (`which mosquitto` finds none)")
    size = SHORT if args.short else LONG
    chosen = [s for s in SCENARIOS if not args.only or any(w in s.name for w in args.only)]
    table: list[tuple[str, ...]] = []
    missed: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="iotledger-bench-faults-"))
    with cluster() as servers, system(servers, workdir / "shared", ROLES) as shared:
        for n, scenario in enumerate(chosen):
            print(f"running: {scenario.name}", flush=True)
            try:
                with deployment(scenario, shared, servers, workdir / str(n)) as deployed:
                    report = run(scenario, size, deployed)
                table += rows(report)
                missed += [f"{scenario.name}: {v}" for v in report.violations()]
            except Exception as exc:  # one broken scenario still leaves a table
                table.append((scenario.name, *[""] * 9, "ERROR"))
                missed.append(f"{scenario.name}: {exc!r}")
    print(f"process logs: {workdir}")
    print_table(HEADER, table)
    print("\n".join(["", "missed:", *missed] if missed else []))


if __name__ == "__main__":
    main()
