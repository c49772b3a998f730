"""Tests of iotledger.settings: environment over TOML file over defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iotledger.settings import (
    DatabaseUrl,
    MqttUrl,
    Settings,
    SettingsError,
    load_settings,
    mqtt_auth_mode,
    parse_database_url,
    parse_mqtt_url,
)

ENV_NAMES = [
    "IOTLEDGER_HOST",
    "IOTLEDGER_PORT",
    "IOTLEDGER_DATABASE_URL",
    "IOTLEDGER_MQTT_URL",
    "IOTLEDGER_EMBEDDED_MQTT_PORT",
    "IOTLEDGER_MQTT_TOPIC",
    "IOTLEDGER_MQTT_CLIENT_ID",
    "IOTLEDGER_JWT_SECRET",
    "IOTLEDGER_DEVICE_CHECK_INTERVAL",
    "IOTLEDGER_DEVICE_CHECK_MISSES",
    "IOTLEDGER_COOKIE_SECURE",
    "IOTLEDGER_DATA_DIR",
    "IOTLEDGER_MAX_BODY_BYTES",
    "IOTLEDGER_LOG_LEVEL",
    "IOTLEDGER_DB_POOL_SIZE",
    "IOTLEDGER_READ_WAIT_TIMEOUT",
    "IOTLEDGER_TRUSTED_PROXIES",
]
FILE_KEYS = [
    ("server", "address"),
    ("server", "host"),
    ("server", "port"),
    ("server", "jwt_secret"),
    ("server", "cookie_secure"),
    ("server", "max_body_bytes"),
    ("server", "data_dir"),
    ("server", "log_level"),
    ("server", "trusted_proxies"),
    ("database", "url"),
    ("database", "host"),
    ("database", "port"),
    ("database", "user"),
    ("database", "password"),
    ("database", "name"),
    ("database", "pool_size"),
    ("database", "read_wait_timeout"),
    ("mqtt", "broker"),
    ("mqtt", "topic"),
    ("mqtt", "client_id"),
    ("mqtt", "username"),
    ("mqtt", "password"),
    ("mqtt", "embedded_port"),
    ("mqtt", "device_check_interval"),
    ("mqtt", "device_check_misses"),
]


SECRET = "a-jwt-secret-of-at-least-32-bytes"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error(config: Path | None = None, /, **env: str) -> str:
    """The message of the SettingsError raised by load_settings; checks it is one line."""
    with pytest.raises(SettingsError) as info:
        load_settings(config, environ=env)
    message = str(info.value)
    assert message.splitlines() == [message]
    return message


def outcome(config: Path | None = None, /, **env: str) -> Settings | str:
    """The settings, or the message of the SettingsError (any other exception propagates)."""
    try:
        return load_settings(config, environ=env)
    except SettingsError as e:
        return str(e)


def assert_one_line_error(result: Settings | str, prefix: str) -> None:
    if isinstance(result, str):
        assert result.startswith(prefix)
        assert result.splitlines() == [result]


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    return repr(value)


# --- defaults and precedence ---


def test_defaults_with_empty_environ() -> None:
    s = load_settings(environ={})
    assert s == Settings()
    assert (s.host, s.port, s.database_url, s.mqtt_url) == ("127.0.0.1", 8080, None, None)
    assert (s.embedded_mqtt_port, s.mqtt_topic, s.mqtt_client_id) == (
        1883,
        "lambdaiot",
        None,
    )
    assert (s.jwt_secret, s.device_check_interval, s.device_check_misses) == (None, 60.0, 3)
    assert (s.cookie_secure, s.data_dir, s.max_body_bytes) == (True, Path("var"), 1048576)
    assert (s.log_level, s.db_pool_size, s.read_wait_timeout) == ("INFO", 10, 5.0)


def test_every_env_var_is_read() -> None:
    env = {
        "IOTLEDGER_HOST": "0.0.0.0",
        "IOTLEDGER_PORT": "9000",
        "IOTLEDGER_DATABASE_URL": "postgres://u:p@db:6543/ledger",
        "IOTLEDGER_MQTT_URL": "mqtt://broker",
        "IOTLEDGER_EMBEDDED_MQTT_PORT": "1884",
        "IOTLEDGER_MQTT_TOPIC": "fleet/a",
        "IOTLEDGER_MQTT_CLIENT_ID": "me",
        "IOTLEDGER_JWT_SECRET": SECRET,
        "IOTLEDGER_DEVICE_CHECK_INTERVAL": "2.5",
        "IOTLEDGER_DEVICE_CHECK_MISSES": "5",
        "IOTLEDGER_COOKIE_SECURE": "off",
        "IOTLEDGER_DATA_DIR": "/tmp/x",
        "IOTLEDGER_MAX_BODY_BYTES": "1000",
        "IOTLEDGER_LOG_LEVEL": "debug",
        "IOTLEDGER_DB_POOL_SIZE": "3",
        "IOTLEDGER_READ_WAIT_TIMEOUT": "0",
        "IOTLEDGER_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16,::1",
    }
    assert set(env) == set(ENV_NAMES)
    assert load_settings(environ=env) == Settings(
        host="0.0.0.0",
        port=9000,
        database_url=DatabaseUrl("db", 6543, "u", "p", "ledger"),
        mqtt_url=MqttUrl("broker", 1883, None, None),
        embedded_mqtt_port=1884,
        mqtt_topic="fleet/a",
        mqtt_client_id="me",
        jwt_secret=SECRET,
        device_check_interval=2.5,
        device_check_misses=5,
        cookie_secure=False,
        data_dir=Path("/tmp/x"),
        max_body_bytes=1000,
        log_level="DEBUG",
        db_pool_size=3,
        read_wait_timeout=0.0,
        trusted_proxies=("10.0.0.1/32", "10.1.0.0/16", "::1/128"),
    )


def test_env_overrides_file_and_file_overrides_defaults(tmp_path: Path) -> None:
    config = write(tmp_path, '[server]\nport = 9000\n[mqtt]\ntopic = "from-file"\n')
    s = load_settings(config, environ={"IOTLEDGER_PORT": "9001"})
    assert (s.port, s.mqtt_topic, s.host) == (9001, "from-file", "127.0.0.1")


def test_config_path_from_env_and_argument_wins(tmp_path: Path) -> None:
    config = write(tmp_path, "[server]\nport = 9000\n")
    assert load_settings(environ={"IOTLEDGER_CONFIG": str(config)}).port == 9000
    other = tmp_path / "other.toml"
    other.write_text("[server]\nport = 9002\n")
    assert load_settings(other, environ={"IOTLEDGER_CONFIG": str(config)}).port == 9002


def test_empty_env_var_counts_as_unset(tmp_path: Path) -> None:
    config = write(tmp_path, "[server]\nport = 9000\n")
    s = load_settings(config, environ={"IOTLEDGER_PORT": "", "IOTLEDGER_DATABASE_URL": ""})
    assert (s.port, s.database_url) == (9000, None)


def test_full_lambda_style_file(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
[server]
address = ":8080"
port = 8080
jwt_secret = "your-secret-key-at-least-32-bytes-long"
[database]
host = "localhost"
port = 5432
user = "lambda"
password = "p@ss:w/rd%"
name = "lambdaiot"
[mqtt]
broker = "tcp://localhost:1883"
topic = "lambdaiot"
client_id = "lambdaiot-core"
username = ""
password = ""
""",
    )
    s = load_settings(config, environ={})
    assert (s.host, s.port) == ("0.0.0.0", 8080)
    assert s.jwt_secret == "your-secret-key-at-least-32-bytes-long"
    assert s.database_url == DatabaseUrl("localhost", 5432, "lambda", "p@ss:w/rd%", "lambdaiot")
    assert s.mqtt_url == MqttUrl("localhost", 1883, None, None)
    assert s.mqtt_client_id == "lambdaiot-core"


def test_own_keys_in_file(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
[server]
host = "0.0.0.0"
cookie_secure = false
max_body_bytes = 2048
data_dir = "/srv/iot"
log_level = "warning"
[database]
url = "postgresql://u@db/ledger"
pool_size = 4
read_wait_timeout = 0.5
[mqtt]
embedded_port = 1999
device_check_interval = 30
device_check_misses = 2
""",
    )
    s = load_settings(config, environ={})
    assert (s.host, s.cookie_secure, s.max_body_bytes) == ("0.0.0.0", False, 2048)
    assert (s.data_dir, s.log_level) == (Path("/srv/iot"), "WARNING")
    assert s.database_url == DatabaseUrl("db", 5432, "u", "", "ledger")
    assert (s.db_pool_size, s.read_wait_timeout) == (4, 0.5)
    assert (s.embedded_mqtt_port, s.device_check_interval, s.device_check_misses) == (1999, 30, 2)


# --- errors ---


def test_port_out_of_range_names_the_variable() -> None:
    assert error(IOTLEDGER_PORT="99999") == "IOTLEDGER_PORT: 99999 is not a port (1-65535)"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://u:p@h/db", "must start with postgresql:// or postgres://"),
        ("postgresql://", "no host"),
        ("postgresql://u:p@h:abc/db", "invalid host or port"),
        ("postgresql://u:p@h:0/db", "not a port"),
        ("postgresql://u:p@h:70000/db", "invalid host or port"),
        ("postgresql://h/db", "no user"),
        ("postgresql://u:p@h", "must name one database"),
        ("postgresql://u:p@h/a/b", "must name one database"),
        ("postgresql://u:p@h/db?sslmode=require&foo=1", "unknown parameters foo"),
        ("postgresql://u:p@h/db#here", "must not have ?query or #fragment"),
        ("postgresql://u:p@h /db", "spaces or control characters"),
    ],
)
def test_bad_database_url(url: str, problem: str) -> None:
    message = error(IOTLEDGER_DATABASE_URL=url)
    assert message.startswith("IOTLEDGER_DATABASE_URL: ")
    assert problem in message


def test_url_errors_do_not_show_the_password() -> None:
    assert "hunter2" not in error(IOTLEDGER_DATABASE_URL="postgresql://u:hunter2@h:x/db")
    assert "hunter2" not in error(IOTLEDGER_MQTT_URL="http://u:hunter2@h")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", MqttUrl("broker", 1883, None, None)),
        ("tcp://Broker:1884/", MqttUrl("broker", 1884, None, None)),
        ("mqtt://alice@broker", MqttUrl("broker", 1883, "alice", None)),
        ("mqtt://alice:p%40ss@[::1]:2000", MqttUrl("::1", 2000, "alice", "p@ss")),
    ],
)
def test_mqtt_url(url: str, expected: MqttUrl) -> None:
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://broker", "mqtt://", "mqtt://b:0", "mqtt://b/topic", "mqtt://:pw@b"]
)
def test_bad_mqtt_url(url: str) -> None:
    assert error(IOTLEDGER_MQTT_URL=url).startswith("IOTLEDGER_MQTT_URL: ")


def test_tcp_broker_with_username_and_password(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[mqtt]\nbroker = "tcp://broker.local:1884"\nusername = "dev"\npassword = "p@ss:/"\n',
    )
    url = load_settings(config, environ={}).mqtt_url
    assert url == MqttUrl("broker.local", 1884, "dev", "p@ss:/")
    assert url is not None
    assert str(url) == "mqtt://dev:p%40ss%3A%2F@broker.local:1884"
    assert url.redacted() == "mqtt://dev:***@broker.local:1884"
    assert parse_mqtt_url(str(url)) == url


def test_env_mqtt_url_replaces_file_broker_and_credentials(tmp_path: Path) -> None:
    config = write(tmp_path, '[mqtt]\nbroker = "tcp://a"\nusername = "u"\npassword = "p"\n')
    s = load_settings(config, environ={"IOTLEDGER_MQTT_URL": "mqtt://b:1999"})
    assert s.mqtt_url == MqttUrl("b", 1999, None, None)


@pytest.mark.parametrize(
    ("mqtt", "setting", "problem"),
    [
        ('username = "u"', "[mqtt] username", "needs [mqtt] broker"),
        ('broker = "mqtt://b"\npassword = "p"', "[mqtt] password", "needs [mqtt] username"),
        ('broker = "mqtt://x@b"\nusername = "u"', "[mqtt] username", "conflicts"),
    ],
)
def test_mqtt_credential_errors(tmp_path: Path, mqtt: str, setting: str, problem: str) -> None:
    config = write(tmp_path, f"[mqtt]\n{mqtt}\n")
    message = error(config)
    assert message.startswith(f"{config} {setting}: ")
    assert problem in message


def test_unknown_keys_in_file_are_rejected(tmp_path: Path) -> None:
    config = write(tmp_path, '[server]\nadress = ":80"\n[mqtt]\nbrokr = "x"\n[extra]\na = 1\n')
    message = error(config)
    assert message.startswith(f"{config}: unknown keys")
    assert "[server] adress" in message
    assert "[mqtt] brokr" in message
    assert "extra" in message


def test_section_that_is_not_a_table_is_rejected(tmp_path: Path) -> None:
    assert "server" in error(write(tmp_path, "server = 1\n"))


def test_missing_or_invalid_config_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert error(missing).startswith(f"{missing}: cannot read the config file")
    assert error(IOTLEDGER_CONFIG=str(missing)).startswith(f"{missing}: ")
    broken = write(tmp_path, "[server\nport = \n")
    assert error(broken).startswith(f"{broken}: is not a valid TOML file")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    assert error(binary).startswith(f"{binary}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = 0", "[server] port: 0 is not a port (1-65535)"),
        ("[server]\nport = 1.5", "[server] port: 1.5 is not an integer"),
        ('[server]\nport = "abc"', "[server] port: abc is not an integer"),
        ("[server]\ncookie_secure = 3", "[server] cookie_secure: 3 is not a boolean"),
        ('[server]\nlog_level = "TRACE"', "[server] log_level: TRACE is not one of"),
        ("[mqtt]\ndevice_check_interval = 0", "[mqtt] device_check_interval: 0 must be"),
        ("[mqtt]\ndevice_check_interval = nan", "[mqtt] device_check_interval: nan is not"),
        ('[mqtt]\ntopic = "a/#"', "[mqtt] topic: a/# is not a base topic"),
        ('[database]\nhost = "h"\nuser = "u"', "[database] name: is required"),
        ('[database]\nurl = "postgres://u@h/d"\nhost = "h"', "[database] url: give either"),
        ('[database]\nhost = "h"\nport = 0\nuser = "u"\nname = "d"', "[database] port: 0 is"),
        ('[server]\naddress = "8080"', "[server] address: 8080 is not host:port"),
        ('[server]\naddress = ":8080"\nport = 9000', "[server] address: :8080 conflicts"),
    ],
)
def test_file_errors_name_the_file_section_and_key(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path, text + "\n")
    assert error(config).startswith(f"{config} {message}")


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        (":8080", "0.0.0.0", 8080),
        ("0.0.0.0:9000", "0.0.0.0", 9000),
        ("[::]:81", "::", 81),
        ("localhost:82", "localhost", 82),
    ],
)
def test_server_address(tmp_path: Path, address: str, host: str, port: int) -> None:
    s = load_settings(write(tmp_path, f'[server]\naddress = "{address}"\n'), environ={})
    assert (s.host, s.port) == (host, port)


def test_without_configuration_the_server_stays_on_loopback() -> None:
    assert load_settings(environ={}).host == "127.0.0.1"


def test_a_short_jwt_secret_stops_start_up_with_one_line_naming_it(tmp_path: Path) -> None:
    short = "only-31-bytes-long-secret-value"
    assert len(short) == 31
    message = error(IOTLEDGER_JWT_SECRET=short)
    assert message.startswith("IOTLEDGER_JWT_SECRET: is shorter than 32 bytes")
    assert short not in message
    config = write(tmp_path, f'[server]\njwt_secret = "{short}"\n')
    assert error(config).startswith(f"{config} [server] jwt_secret: is shorter than 32 bytes")


def test_trusted_proxies_take_a_toml_list_too(tmp_path: Path) -> None:
    config = write(tmp_path, '[server]\ntrusted_proxies = ["192.168.0.0/24", "fd00::1"]\n')
    proxies = load_settings(config, environ={}).trusted_proxies
    assert proxies == ("192.168.0.0/24", "fd00::1/128")


@pytest.mark.parametrize("text", ["10.0.0.300", "10.0.0.0/33", "proxy.local"])
def test_a_trusted_proxy_that_is_no_address_is_refused(text: str) -> None:
    assert error(IOTLEDGER_TRUSTED_PROXIES=text).startswith("IOTLEDGER_TRUSTED_PROXIES: ")


@pytest.mark.parametrize(
    ("text", "value"),
    [(t, True) for t in ("true", "TRUE", "1", "yes", "On", " on ")]
    + [(t, False) for t in ("false", "False", "0", "no", "NO", "off")],
)
def test_cookie_secure_booleans(text: str, value: bool) -> None:
    assert load_settings(environ={"IOTLEDGER_COOKIE_SECURE": text}).cookie_secure is value


@pytest.mark.parametrize("text", ["maybe", "2", "tru", "-"])
def test_cookie_secure_rejects_other_words(text: str) -> None:
    assert error(IOTLEDGER_COOKIE_SECURE=text).startswith("IOTLEDGER_COOKIE_SECURE: ")


@pytest.mark.parametrize("topic", ["+", "a/+/b", "a/#", "/a", "a/", " "])
def test_bad_topics(topic: str) -> None:
    assert error(IOTLEDGER_MQTT_TOPIC=topic).startswith("IOTLEDGER_MQTT_TOPIC: ")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("IOTLEDGER_DEVICE_CHECK_INTERVAL", "0"),
        ("IOTLEDGER_DEVICE_CHECK_INTERVAL", "-1"),
        ("IOTLEDGER_DEVICE_CHECK_INTERVAL", "inf"),
        ("IOTLEDGER_DEVICE_CHECK_INTERVAL", "1e999"),
        ("IOTLEDGER_READ_WAIT_TIMEOUT", "-0.5"),
        ("IOTLEDGER_READ_WAIT_TIMEOUT", "NaN"),
        ("IOTLEDGER_DEVICE_CHECK_MISSES", "0"),
        ("IOTLEDGER_DEVICE_CHECK_MISSES", "1.5"),
        ("IOTLEDGER_MAX_BODY_BYTES", "1e6"),
        ("IOTLEDGER_DB_POOL_SIZE", "ten"),
        ("IOTLEDGER_LOG_LEVEL", "verbose"),
        ("IOTLEDGER_HOST", "a b"),
        ("IOTLEDGER_HOST", "user@host"),
        ("IOTLEDGER_EMBEDDED_MQTT_PORT", "65536"),
        ("IOTLEDGER_MQTT_AUTH", "sometimes"),
    ],
)
def test_bad_numbers_and_words(name: str, text: str) -> None:
    assert error(**{name: text}).startswith(f"{name}: ")


def test_repr_hides_secrets() -> None:
    s = load_settings(
        environ={
            "IOTLEDGER_JWT_SECRET": "jwt-secret-" + "x" * 32,
            "IOTLEDGER_DATABASE_URL": "postgresql://u:db-secret@h/d",
            "IOTLEDGER_MQTT_URL": "mqtt://u:mqtt-secret@b",
        }
    )
    text = repr(s)
    words = set(text.replace("'", " ").split())
    assert not {"jwt-secret-" + "x" * 32, "db-secret", "mqtt-secret"} & words
    assert "secret" not in text.replace("jwt_secret", "")
    assert s.database_url is not None
    assert s.database_url.redacted() == "postgresql://u:***@h:5432/d"


# --- properties ---


@given(st.integers(min_value=1, max_value=65535))
def test_any_valid_port_round_trips(port: int) -> None:
    assert load_settings(environ={"IOTLEDGER_PORT": str(port)}).port == port


@given(st.integers().filter(lambda n: not 1 <= n <= 65535))
def test_any_integer_outside_the_port_range_is_rejected(port: int) -> None:
    assert error(IOTLEDGER_PORT=str(port)).startswith("IOTLEDGER_PORT: ")


@given(st.text())
@example("0\x1f")
@example(" 8080\n")
@example("9" * 5000)
def test_any_port_text_parses_or_raises_settings_error(text: str) -> None:
    result = outcome(IOTLEDGER_PORT=text)
    assert_one_line_error(result, "IOTLEDGER_PORT: ")
    if isinstance(result, Settings):
        assert 1 <= result.port <= 65535


@given(st.sampled_from(ENV_NAMES), st.text())
def test_any_env_text_loads_or_raises_settings_error(name: str, text: str) -> None:
    assert_one_line_error(outcome(**{name: text}), f"{name}: ")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(FILE_KEYS),
    st.one_of(st.booleans(), st.integers(), st.floats(), st.text()),
)
def test_any_file_value_loads_or_raises_settings_error(
    tmp_path: Path, key: tuple[str, str], value: object
) -> None:
    config = write(tmp_path, f"[{key[0]}]\n{key[1]} = {toml_value(value)}\n")
    assert_one_line_error(outcome(config), f"{config} [{key[0]}] ")


@given(
    host=st.sampled_from(["localhost", "db.example.com", "10.0.0.5", "::1"]),
    port=st.integers(min_value=1, max_value=65535),
    user=st.text(min_size=1),
    password=st.text(),
    dbname=st.text(min_size=1),
)
def test_database_url_round_trips(
    host: str, port: int, user: str, password: str, dbname: str
) -> None:
    url = DatabaseUrl(host, port, user, password, dbname)
    assert parse_database_url(str(url)) == url
    assert parse_database_url(url.redacted()).password == ("***" if password else "")


@given(password=st.text(alphabet="@:/%?#[] ab", min_size=1))
def test_database_url_round_trips_url_special_passwords(password: str) -> None:
    url = DatabaseUrl("h", 5432, "u", password, "d")
    assert parse_database_url(str(url)) == url


def test_mqtt_auth_defaults_to_devices_with_the_embedded_broker_and_off_with_another() -> None:
    assert mqtt_auth_mode(load_settings(environ={})) == "devices"
    external = {"IOTLEDGER_MQTT_URL": "mqtt://broker:1883"}
    assert mqtt_auth_mode(load_settings(environ=external)) == "off"
    chosen = load_settings(environ={**external, "IOTLEDGER_MQTT_AUTH": " DynSec "})
    assert mqtt_auth_mode(chosen) == "dynsec"
