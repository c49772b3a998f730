"""TLS settings: libpq parameters in the database URL, `mqtts://` and the broker's CA."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from iotledger.adapters.mqtt.tls import tls_context
from iotledger.adapters.postgres.connections import Bounds, connection_string
from iotledger.adapters.postgres.eventstore import BoundedPostgresFactory, eventsourcing_env
from iotledger.settings import (
    LIBPQ_PARAMETERS,
    MqttUrl,
    SettingsError,
    load_settings,
    parse_mqtt_url,
)

README = Path(__file__).parents[2] / "README.md"
VERIFIED = "postgresql://u:pw@db:5432/app?sslmode=verify-full&sslrootcert=/ca.pem"
BOUNDS = Bounds(statement_timeout=5.0, lock_timeout=3.0)


def error(**env: str) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(environ=env)
    message = str(info.value)
    assert message.splitlines() == [message]
    return message


def test_a_database_url_keeps_its_libpq_parameters_in_order() -> None:
    url = load_settings(environ={"IOTLEDGER_DATABASE_URL": VERIFIED}).database_url
    assert url is not None
    assert url.params == (("sslmode", "verify-full"), ("sslrootcert", "/ca.pem"))
    assert str(url) == VERIFIED


def test_the_readme_lists_every_accepted_libpq_parameter() -> None:
    text = README.read_text()
    section = text[text.index("### TLS") :]
    assert not [name for name in LIBPQ_PARAMETERS if f"`{name}`" not in section]


def test_the_ssl_password_is_never_shown() -> None:
    given = "postgresql://u:pw@db/app?sslkey=/k.pem&sslpassword=s3cret%26"
    url = load_settings(environ={"IOTLEDGER_DATABASE_URL": given}).database_url
    assert url is not None
    assert dict(url.params)["sslpassword"] == "s3cret&"
    for shown in (url.redacted(), repr(url)):
        assert "s3cret" not in shown
        assert "sslpassword=***" in shown


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("options=-c%20x=1", "unknown parameters options"),
        ("host=elsewhere", "unknown parameters host"),
        ("sslmode=required", "sslmode required is not one of disable, allow"),
        ("connect_timeout=soon", "connect_timeout soon is not whole seconds"),
        ("sslmode=require&sslmode=disable", "gives sslmode more than once"),
        ("sslmode", "malformed query string"),
    ],
)
def test_an_unknown_or_bad_libpq_parameter_is_refused_naming_the_setting(
    query: str, problem: str
) -> None:
    message = error(IOTLEDGER_DATABASE_URL=f"postgresql://u:pw@db/app?{query}")
    assert message.startswith("IOTLEDGER_DATABASE_URL: ")
    assert problem in message


def test_the_parameters_reach_our_connections_and_eventsourcings() -> None:
    url = load_settings(environ={"IOTLEDGER_DATABASE_URL": VERIFIED}).database_url
    assert url is not None
    ours = conninfo_to_dict(connection_string(url, "pool", BOUNDS))
    env = eventsourcing_env(url, 4, BOUNDS)
    theirs = conninfo_to_dict(env[BoundedPostgresFactory.CONNECTION_OPTIONS])
    for options, name in ((ours, "iotledger-pool"), (theirs, "iotledger-eventstore")):
        assert (options["sslmode"], options["sslrootcert"]) == ("verify-full", "/ca.pem")
        assert options["application_name"] == name
        assert "statement_timeout=5000" in str(options["options"])


def test_a_given_application_name_and_connect_timeout_win() -> None:
    given = "postgresql://u:pw@db/app?application_name=fleet-a&connect_timeout=30"
    url = load_settings(environ={"IOTLEDGER_DATABASE_URL": given}).database_url
    assert url is not None
    options = conninfo_to_dict(connection_string(url, "watch", BOUNDS))
    assert (options["application_name"], options["connect_timeout"]) == ("fleet-a-watch", "30")


def test_mqtts_defaults_to_port_8883_and_round_trips() -> None:
    url = parse_mqtt_url("mqtts://svc:p%40ss@broker")
    assert url == MqttUrl("broker", 8883, "svc", "p@ss", tls=True)
    assert str(url) == "mqtts://svc:p%40ss@broker:8883"
    assert url.redacted() == "mqtts://svc:***@broker:8883"
    assert parse_mqtt_url(str(url)) == url
    assert parse_mqtt_url("ssl://broker:9000") == MqttUrl("broker", 9000, None, None, tls=True)


def test_toml_credentials_keep_tls(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[mqtt]\nbroker = "mqtts://b"\nusername = "u"\npassword = "p"\n')
    assert load_settings(config, environ={}).mqtt_url == MqttUrl("b", 8883, "u", "p", tls=True)


def test_the_ca_file_is_read_from_the_environment_and_the_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not yet a certificate")
    config = tmp_path / "config.toml"
    config.write_text(f'[mqtt]\nbroker = "mqtts://b"\nca_file = "{ca}"\n')
    assert load_settings(config, environ={}).mqtt_ca_file == ca
    env = {"IOTLEDGER_MQTT_URL": "mqtts://b", "IOTLEDGER_MQTT_CA_FILE": str(ca)}
    settings = load_settings(environ=env)
    assert settings.mqtt_ca_file == ca
    with pytest.raises(SettingsError, match=r"^IOTLEDGER_MQTT_CA_FILE: cannot load the CA"):
        tls_context(settings)


def test_a_missing_ca_file_is_refused_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    message = error(IOTLEDGER_MQTT_URL="mqtts://b", IOTLEDGER_MQTT_CA_FILE=str(missing))
    assert message.startswith("IOTLEDGER_MQTT_CA_FILE: /")
    assert message.endswith("nope.pem is not a readable file")


def test_tls_files_need_an_mqtts_broker_and_a_key_needs_its_certificate(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("")
    assert error(IOTLEDGER_MQTT_URL="mqtt://b", IOTLEDGER_MQTT_CA_FILE=str(pem)).startswith(
        "IOTLEDGER_MQTT_CA_FILE: needs an mqtts:// IOTLEDGER_MQTT_URL"
    )
    assert error(IOTLEDGER_MQTT_URL="mqtts://b", IOTLEDGER_MQTT_KEY_FILE=str(pem)).startswith(
        "IOTLEDGER_MQTT_KEY_FILE: needs IOTLEDGER_MQTT_CERT_FILE"
    )


def test_without_tls_there_is_no_context_and_with_it_the_system_store() -> None:
    assert tls_context(load_settings(environ={"IOTLEDGER_MQTT_URL": "mqtt://b"})) is None
    context = tls_context(load_settings(environ={"IOTLEDGER_MQTT_URL": "mqtts://b"}))
    assert context is not None
    assert context.check_hostname
