"""The fault suite, short: every scenario of `tests/support/faults/scenarios.py` against real
processes, a PostgreSQL it restarts and a Mosquitto it kills (`pytest -m faults`).

`python -m bench.faults` runs the same scenarios longer and prints the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faults.cluster import Cluster, cluster, has_mosquitto
from tests.support.faults.scenarios import SCENARIOS, SHORT, Scenario, deployment, run
from tests.support.faults.system import ROLES, System, system

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    if not has_mosquitto():
        pytest.skip("mosquitto is not installed (`which mosquitto` finds none)")
    with cluster() as servers:
        yield servers


@pytest.fixture(scope="module")
def shared(own_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One process per role, for every scenario that leaves them whole."""
    with system(own_cluster, tmp_path_factory.mktemp("shared"), ROLES) as deployed:
        yield deployed


def case(scenario: Scenario) -> object:
    marks = []
    if scenario.known_bug is not None:
        marks.append(pytest.mark.xfail(strict=False, reason=scenario.known_bug))
    return pytest.param(scenario, id=scenario.name, marks=marks)


@pytest.mark.parametrize("scenario", [case(s) for s in SCENARIOS])
def test_what_was_acknowledged_is_stored_once_and_errors_end_after_recovery(
    scenario: Scenario, own_cluster: Cluster, shared: System, tmp_path: Path
) -> None:
    with deployment(scenario, shared, own_cluster, tmp_path) as deployed:
        report = run(scenario, SHORT, deployed)
    for o in report.outcomes:
        print(f"{scenario.name} {o}")
    assert all(o.acknowledged > 0 for o in report.outcomes), report.outcomes
    assert report.violations() == []
