"""`iotledger` processes as an operator runs them: JSON logs, the access log, /metrics of
a role without the HTTP API."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from iotledger.settings import DatabaseUrl, MqttUrl
from tests.support.network import free_port
from tests.support.processes import environment, serving, stop, wait_for_http, wait_until


def test_serve_with_json_logs_writes_nothing_but_json_lines_from_every_library(
    own_database: DatabaseUrl, mqtt_url: MqttUrl
) -> None:
    port = free_port()
    env = environment(
        own_database,
        mqtt_url,
        IOTLEDGER_PORT=str(port),
        IOTLEDGER_LOG_FORMAT="json",
        IOTLEDGER_ACCESS_LOG="true",
        IOTLEDGER_LOG_LEVEL="DEBUG",  # so that every library speaks
    )
    base = f"http://127.0.0.1:{port}"
    with serving(env=env) as process:
        wait_for_http(base, process)
        assert httpx.get(f"{base}/hello?x=1").status_code == 200
        httpx.get(f"{base}/no/such/page")
        code, _, output = stop(process)
    assert code == 0, output
    entries = [json.loads(line) for line in output.splitlines()]  # fails on any other line
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
    loggers = {entry["logger"].split(".")[0] for entry in entries}
    assert {"iotledger", "uvicorn", "gmqtt"} <= loggers
    access = [e for e in entries if e["logger"] == "iotledger.access"]
    hello = next(e for e in access if e["path"] == "/hello")
    assert (hello["method"], hello["status"]) == ("GET", 200)
    assert hello["duration_ms"] >= 0
    assert any(e["path"] == "/no/such/page" and e["status"] == 404 for e in access)


def test_libraries_log_only_warnings_unless_the_level_is_debug(
    own_database: DatabaseUrl, mqtt_url: MqttUrl
) -> None:
    port = free_port()
    env = environment(own_database, mqtt_url, IOTLEDGER_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    with serving(env=env) as process:
        wait_for_http(base, process)
        httpx.get(f"{base}/hello")
        code, _, output = stop(process)
    assert code == 0, output
    info = [line for line in output.splitlines() if " INFO " in line]
    assert info, output
    assert all(" INFO iotledger" in line for line in info), output
    assert "GET /hello" not in output  # no access log unless asked for


def test_a_role_without_the_http_api_serves_metrics_on_its_own_port(
    migrated: tuple[int, dict[str, str]],
) -> None:
    _, env = migrated
    metrics_port = free_port()
    env = {**env, "IOTLEDGER_METRICS_PORT": str(metrics_port)}
    url = f"http://127.0.0.1:{metrics_port}/metrics"

    def scraped() -> dict[str, float]:
        try:
            text = httpx.get(url, timeout=2).text
        except httpx.HTTPError:
            return {}
        return {
            f"{sample.name}{sorted(sample.labels.items())}": sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    with serving("--role", "projections", env=env) as process:
        wait_until(lambda: scraped() or process.poll() is not None, timeout=60)
        found = scraped()
        assert "iotledger_projection_position[('projection', 'users')]" in found
        assert "iotledger_projection_failures_total[('projection', 'users')]" in found
        assert any(name.startswith("iotledger_db_pool_connections") for name in found)
        code, _, output = stop(process)
    assert code == 0, output
