"""Settings of iotledger, read once at start-up.

Priority, highest first: ``IOTLEDGER_*`` environment variables, the TOML file (``--config``
or ``IOTLEDGER_CONFIG``), the defaults of :class:`Settings`. Each environment variable is
``IOTLEDGER_`` + the upper-cased field name (``IOTLEDGER_DB_POOL_SIZE`` -> ``db_pool_size``).

Decisions:

* ``[server] address = ":8080"``: an empty host means every interface (``0.0.0.0``), as
  in Go, whose spelling the Lambda IoT Core document's file uses: an operator who copies
  it expects the server to be reachable. ``"[::]:8080"`` listens on IPv6 (and IPv4-mapped
  addresses where the system allows), ``"host:8080"`` on that host only. Without any
  configuration the server stays on 127.0.0.1. ``[server] host``/``port`` may be given as
  well but must agree with ``address``.
* A JWT secret shorter than 32 bytes is refused: HS256 wants a key at least as long as
  its hash, and a short one can be guessed offline from any token.
* ``trusted_proxies``: comma-separated addresses or CIDRs (a TOML list works too) whose
  ``X-Forwarded-For`` names the client for the sign-in limits.
* An empty environment variable counts as unset (the ``VAR=`` idiom of shells and compose
  files). In the file, ``""`` counts as unset for the optional settings (``[database] url``,
  ``[mqtt] broker``/``username``/``password``, ``[server] jwt_secret``).
* ``IOTLEDGER_MQTT_URL`` replaces ``[mqtt] broker`` together with its username/password.
* A database URL must name a user and a database. Its query string takes the libpq
  parameters of ``LIBPQ_PARAMETERS`` (TLS, timeouts, keepalives, the application name);
  any other is refused rather than silently dropped. ``read_wait_timeout`` may be 0.
* ``mqtts://`` (default port 8883) speaks TLS to the broker; ``mqtt_ca_file`` (unset: the
  system store) and a client certificate (``mqtt_cert_file``, ``mqtt_key_file``) need it.
* A relative ``data_dir`` is relative to the working directory, not to the file.
* Error messages and ``repr()`` never show passwords or the JWT secret.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import msgspec

from iotledger.domain.readings import MAX_BATCH_READINGS

T = TypeVar("T")
EVERY_INTERFACE = "0.0.0.0"
MIN_JWT_SECRET_BYTES = 32
LIBPQ_PARAMETERS = frozenset((
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir",
    "sslsni", "sslnegotiation", "sslcertmode", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "channel_binding", "require_auth", "gssencmode",
    "target_session_attrs", "connect_timeout", "application_name", "keepalives",
    "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
))  # fmt: skip
"""The libpq parameters a database URL may carry (`?sslmode=verify-full&...`). The others
are iotledger's own (`options`: the time bounds) or are in the URL's other parts."""
SECRET_PARAMETERS = frozenset({"sslpassword"})
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class SettingsError(Exception):
    """An invalid setting; ``str(e)`` is one line starting with the setting's name."""


def _fail(setting: str, problem: str) -> NoReturn:
    raise SettingsError(" ".join(f"{setting}: {problem}".split()))


def _show(value: object) -> str:
    """A short, one-line rendering of a user-supplied (non-secret) value."""
    if isinstance(value, bool):
        return str(value).lower()
    text = value if isinstance(value, str) else repr(value)
    if not text or not text.isprintable() or text != text.strip():
        text = repr(text)
    return text if len(text) <= 60 else text[:57] + "..."


def _url(scheme: str, host: str, port: int, user: str | None, password: str | None) -> str:
    """scheme://user:password@host:port with `user` percent-encoded, `password` used as is."""
    auth = f"{quote(user, safe='')}{':' + password if password else ''}@" if user else ""
    return f"{scheme}://{auth}{f'[{host}]' if ':' in host else host}:{port}"


class DatabaseUrl(msgspec.Struct, frozen=True):
    """A parsed ``postgresql://user:password@host:port/dbname?param=value`` URL."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    params: tuple[tuple[str, str], ...] = ()  # libpq parameters (LIBPQ_PARAMETERS)

    def _render(self, password: str, params: tuple[tuple[str, str], ...]) -> str:
        dbname = quote(self.dbname, safe="")
        query = f"?{urlencode(params, safe='/*', quote_via=quote)}" if params else ""
        return f"{_url('postgresql', self.host, self.port, self.user, password)}/{dbname}{query}"

    def __str__(self) -> str:
        return self._render(quote(self.password, safe=""), self.params)

    def redacted(self) -> str:
        params = tuple((k, "***" if k in SECRET_PARAMETERS else v) for k, v in self.params)
        return self._render(self.password and "***", params)

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.redacted()!r})"


class MqttUrl(msgspec.Struct, frozen=True):
    """A parsed ``mqtt://[user:password@]host:port`` URL (``tcp://`` is accepted as a
    synonym); ``mqtts://`` (or ``ssl://``) speaks TLS."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool = False

    def _render(self, password: str | None) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return _url(scheme, self.host, self.port, self.username, password)

    def __str__(self) -> str:
        return self._render(self.password and quote(self.password, safe=""))

    def redacted(self) -> str:
        return self._render(self.password and "***")

    def __repr__(self) -> str:
        return f"MqttUrl({self.redacted()!r})"


class Settings(msgspec.Struct, frozen=True):
    """The settings of iotledger; build them with :func:`load_settings`."""

    host: str = "127.0.0.1"
    port: int = 8080
    database_url: DatabaseUrl | None = None  # None: embedded PostgreSQL
    mqtt_url: MqttUrl | None = None  # None: embedded broker
    embedded_mqtt_port: int = 1883
    mqtt_topic: str = "lambdaiot"
    mqtt_client_id: str | None = None  # None: derived (adapters/mqtt/names.py)
    mqtt_ca_file: Path | None = None  # CA of an mqtts:// broker; None: the system store
    mqtt_cert_file: Path | None = None  # client certificate for an mqtts:// broker
    mqtt_key_file: Path | None = None  # its key (None: in the certificate file)
    jwt_secret: str | None = None  # None: the caller generates one under data_dir and warns
    device_check_interval: float = 60.0
    device_check_misses: int = 3
    cookie_secure: bool = True
    reuse_port: bool = False  # several `--role api` processes of one host share the port
    data_dir: Path = Path("var")
    max_body_bytes: int = 1048576
    max_batch_readings: int = MAX_BATCH_READINGS  # most readings in one batched message/request
    log_level: str = "INFO"
    db_pool_size: int = 10
    read_wait_timeout: float = 5.0
    statement_timeout: float = 5.0  # seconds any statement may run; then 503 + Retry-After
    lock_timeout: float = 3.0  # seconds any statement may wait for a lock
    mqtt_session_expiry: int = 7200  # seconds the broker keeps our session while we are away
    trusted_proxies: tuple[str, ...] = ()  # networks (CIDR) whose X-Forwarded-For names the client
    ready_max_lag: int = 10000  # events a projection may lag before /ready answers 503
    metrics_port: int | None = None  # where a role without an HTTP API serves /metrics
    log_format: str = "text"  # text, or json: one JSON object a line
    access_log: bool = False  # one log line per HTTP request
    mqtt_auth: str | None = None  # devices, dynsec or off; None: devices if embedded, else off
    stream_heartbeat: float = 15.0  # seconds an idle event stream waits before a keep-alive
    stream_stall_timeout: float = 10.0  # seconds a stream waits for a client to read; then ends
    readings_retention_days: int | None = None  # older readings leave the read model; None: keep

    def __repr__(self) -> str:
        fields = msgspec.structs.asdict(self) | {"jwt_secret": self.jwt_secret and "***"}
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


class _UrlParts(msgspec.Struct, frozen=True):
    scheme: str
    host: str
    port: int
    user: str | None  # None when absent, as the password
    password: str | None
    path: str
    query: str


def _url_parts(
    value: str, setting: str, schemes: dict[str, int], *, query: bool = False
) -> _UrlParts:
    """The parts of a URL whose scheme is one of `schemes` (each with its default port)."""
    scheme, sep, _ = value.partition("://")
    if not sep or scheme.lower() not in schemes:
        _fail(setting, "URL must start with " + " or ".join(f"{s}://" for s in schemes))
    if not value.isprintable() or " " in value:
        _fail(setting, "URL contains spaces or control characters")
    try:
        parts = urlsplit(value)
        port = schemes[scheme.lower()] if parts.port is None else parts.port
    except ValueError:
        _fail(setting, "URL has an invalid host or port (percent-encode special characters)")
    if not parts.hostname:
        _fail(setting, "URL has no host")
    if not 1 <= port <= 65535:
        _fail(setting, f"URL port {port} is not a port (1-65535)")
    if (parts.query and not query) or parts.fragment:
        _fail(setting, "URL must not have ?query or #fragment (percent-encode ? and # in it)")
    user, password = (unquote(p) if p else None for p in (parts.username, parts.password))
    return _UrlParts(scheme.lower(), parts.hostname, port, user, password, parts.path, parts.query)


def _libpq_parameters(query: str, setting: str) -> tuple[tuple[str, str], ...]:
    """`sslmode=verify-full&sslrootcert=...`: each known to LIBPQ_PARAMETERS, once."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        _fail(setting, "URL has a malformed query string (name=value&name=value)")
    names = [name for name, _ in pairs]
    if unknown := sorted({n for n in names if n not in LIBPQ_PARAMETERS}):
        _fail(
            setting,
            f"URL has unknown parameters {', '.join(map(_show, unknown))} (accepted: "
            "the libpq parameters listed in the README)",
        )
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        _fail(setting, f"URL gives {', '.join(repeated)} more than once")
    params = dict(pairs)
    if params.get("sslmode", "prefer") not in SSL_MODES:
        _fail(setting, f"sslmode {_show(params['sslmode'])} is not one of {', '.join(SSL_MODES)}")
    if not re.fullmatch(r"[0-9]{1,6}", params.get("connect_timeout", "0")):
        _fail(setting, f"connect_timeout {_show(params['connect_timeout'])} is not whole seconds")
    return tuple(pairs)


def parse_database_url(value: str, setting: str = "IOTLEDGER_DATABASE_URL") -> DatabaseUrl:
    schemes = {"postgresql": 5432, "postgres": 5432}
    url = _url_parts(value, setting, schemes, query=True)
    if not url.user:
        _fail(setting, "URL has no user (postgresql://user:password@host:port/dbname)")
    if len(url.path) < 2 or "/" in url.path[1:]:
        _fail(setting, "URL must name one database (postgresql://user:password@host:port/dbname)")
    params = _libpq_parameters(url.query, setting)
    return DatabaseUrl(
        url.host, url.port, url.user, url.password or "", unquote(url.path[1:]), params
    )


def parse_mqtt_url(value: str, setting: str = "IOTLEDGER_MQTT_URL") -> MqttUrl:
    schemes = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}
    url = _url_parts(value, setting, schemes)
    if url.path not in ("", "/"):
        _fail(setting, "URL must not have a path")
    if url.password is not None and url.user is None:
        _fail(setting, "URL has a password but no user name")
    return MqttUrl(url.host, url.port, url.user, url.password, url.scheme in ("mqtts", "ssl"))


def _check(
    convert: Callable[[object, str], T], ok: Callable[[T], bool], problem: str
) -> Callable[[object, str], T]:
    """A parser that converts the value, then fails with `problem` unless `ok(result)`."""

    def parse(value: object, setting: str) -> T:
        if not ok(result := convert(value, setting)):
            _fail(setting, f"{_show(value)} {problem}")
        return result

    return parse


def _string(value: object, setting: str) -> str:
    if not isinstance(value, str):
        _fail(setting, f"{_show(value)} is not a string")
    return value


def _integer(value: object, setting: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,4000}", value.strip()):
        return int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(setting, f"{_show(value)} is not an integer")
    return value


_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _number(value: object, setting: str) -> float:
    text = value.strip() if isinstance(value, str) else ""
    number = float(text) if _NUMBER.fullmatch(text) else value
    if not isinstance(number, int | float) or isinstance(number, bool) or not abs(number) < 1e300:
        _fail(setting, f"{_show(value)} is not a number")
    return float(number)


_BOOLS = dict.fromkeys(("true", "1", "yes", "on"), True)
_BOOLS |= dict.fromkeys(("false", "0", "no", "off"), False)


def _bool(value: object, setting: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and (word := value.strip().lower()) in _BOOLS:
        return _BOOLS[word]
    _fail(setting, f"{_show(value)} is not a boolean (true/false/1/0/yes/no/on/off)")


def _file(value: object, setting: str) -> Path:
    """A readable file, named in full when it is not one (a path is no secret)."""
    path = Path(_string(value, setting))
    if not (path.is_file() and os.access(path, os.R_OK)):
        _fail(setting, f"{path} is not a readable file")
    return path


def _jwt_secret(value: object, setting: str) -> str:
    """A secret long enough for HS256; the message never shows it."""
    secret = _string(value, setting)
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        _fail(
            setting,
            f"is shorter than {MIN_JWT_SECRET_BYTES} bytes; "
            "use a long random value (e.g. `openssl rand -hex 32`)",
        )
    return secret


def _networks(value: object, setting: str) -> tuple[str, ...]:
    """`10.0.0.1, 10.1.0.0/16, ::1` (or a TOML list of them), each as a CIDR network."""
    items = value if isinstance(value, list) else _string(value, setting).split(",")
    try:
        return tuple(
            str(ipaddress.ip_network(_string(item, setting).strip(), strict=False))
            for item in items
            if not isinstance(item, str) or item.strip()
        )
    except ValueError as error:
        _fail(setting, f"{_show(value)} is not a list of addresses or CIDRs ({error})")


_text = _check(_string, lambda s: bool(s.strip()), "must not be empty")
_port = _check(_integer, lambda n: 1 <= n <= 65535, "is not a port (1-65535)")
_count = _check(_integer, lambda n: n >= 1, "must be at least 1")
_at_least_0 = _check(_integer, lambda n: n >= 0, "must not be negative")
_positive = _check(_number, lambda x: x > 0, "must be greater than 0")
_non_negative = _check(_number, lambda x: x >= 0, "must not be negative")
_host = _check(
    _text, lambda h: bool(re.fullmatch(r"[\w.:%-]+", h)), "is not a host name or address"
)
_topic = _check(
    _text,
    lambda t: t.isprintable() and not {"+", "#"} & set(t) and "/" not in (t[0], t[-1]),
    "is not a base topic (no +, # or leading/trailing /)",
)
_log_level = _check(
    lambda v, s: _text(v, s).strip().upper(),
    lambda level: level in ("DEBUG", "INFO", "WARNING", "ERROR"),
    "is not one of DEBUG, INFO, WARNING, ERROR",
)
_log_format = _check(
    lambda v, s: _text(v, s).strip().lower(),
    lambda kind: kind in ("text", "json"),
    "is not one of text, json",
)

MQTT_AUTH_MODES = ("devices", "dynsec", "off")
_mqtt_auth = _check(
    lambda v, s: _text(v, s).strip().lower(),
    lambda mode: mode in MQTT_AUTH_MODES,
    "is not one of devices, dynsec, off",
)


def mqtt_auth_mode(settings: Settings) -> str:
    """`IOTLEDGER_MQTT_AUTH`, or its default: `devices` with the embedded broker, else `off`."""
    return settings.mqtt_auth or ("off" if settings.mqtt_url is not None else "devices")


# field: (parser, [section] and key in the file); the environment variable is IOTLEDGER_<FIELD>.
_FIELDS: dict[str, tuple[Callable[[object, str], object], str, str]] = {
    "host": (_host, "server", "host"),
    "port": (_port, "server", "port"),
    "database_url": (lambda v, s: parse_database_url(_string(v, s), s), "database", "url"),
    "mqtt_url": (lambda v, s: parse_mqtt_url(_string(v, s), s), "mqtt", "broker"),
    "embedded_mqtt_port": (_port, "mqtt", "embedded_port"),
    "mqtt_topic": (_topic, "mqtt", "topic"),
    "mqtt_client_id": (_text, "mqtt", "client_id"),
    "mqtt_ca_file": (_file, "mqtt", "ca_file"),
    "mqtt_cert_file": (_file, "mqtt", "cert_file"),
    "mqtt_key_file": (_file, "mqtt", "key_file"),
    "jwt_secret": (_jwt_secret, "server", "jwt_secret"),
    "device_check_interval": (_positive, "mqtt", "device_check_interval"),
    "device_check_misses": (_count, "mqtt", "device_check_misses"),
    "cookie_secure": (_bool, "server", "cookie_secure"),
    "reuse_port": (_bool, "server", "reuse_port"),
    "data_dir": (lambda v, s: Path(_text(v, s)), "server", "data_dir"),
    "max_body_bytes": (_count, "server", "max_body_bytes"),
    "max_batch_readings": (_count, "server", "max_batch_readings"),
    "log_level": (_log_level, "server", "log_level"),
    "db_pool_size": (_count, "database", "pool_size"),
    "read_wait_timeout": (_non_negative, "database", "read_wait_timeout"),
    "statement_timeout": (_positive, "database", "statement_timeout"),
    "lock_timeout": (_positive, "database", "lock_timeout"),
    "mqtt_session_expiry": (_count, "mqtt", "session_expiry"),
    "trusted_proxies": (_networks, "server", "trusted_proxies"),
    "ready_max_lag": (_at_least_0, "server", "ready_max_lag"),
    "metrics_port": (_port, "server", "metrics_port"),
    "log_format": (_log_format, "server", "log_format"),
    "access_log": (_bool, "server", "access_log"),
    "mqtt_auth": (_mqtt_auth, "mqtt", "auth"),
    "stream_heartbeat": (_positive, "server", "stream_heartbeat"),
    "stream_stall_timeout": (_positive, "server", "stream_stall_timeout"),
    "readings_retention_days": (_count, "database", "readings_retention_days"),
}
# Keys combined by the _apply_* functions below.
_SPECIAL = {
    "server": {"address"},
    "database": {"host", "port", "user", "password", "name"},
    "mqtt": {"username", "password"},
}
_DEFAULTS = Settings()


def _key(table: dict[str, Any], key: str, where: str, parse: Callable[[object, str], T]) -> T:
    if key not in table:
        _fail(f"{where} {key}", "is required when [database] host/user/name are used")
    return parse(table[key], f"{where} {key}")


def _apply_address(server: dict[str, Any], values: dict[str, object], path: str) -> None:
    if "address" not in server:
        return
    where = f"{path} [server] address"
    address = _text(server["address"], where)
    host, sep, port = address.rpartition(":")
    if not sep:
        _fail(where, f"{_show(address)} is not host:port")
    parsed: dict[str, object] = {"port": _port(port, where)}
    host = host.removeprefix("[").removesuffix("]")
    parsed["host"] = _host(host, where) if host else EVERY_INTERFACE
    for field, value in parsed.items():
        if values.setdefault(field, value) != value:
            _fail(where, f"{_show(address)} conflicts with [server] {field} = {values[field]}")


def _apply_database_keys(db: dict[str, Any], values: dict[str, object], path: str) -> None:
    if not _SPECIAL["database"] & db.keys():
        return
    where = f"{path} [database]"
    if "url" in db:
        _fail(f"{where} url", "give either url or host/port/user/password/name, not both")
    port = _port(db.get("port", 5432), f"{where} port")
    password = _string(db.get("password", ""), f"{where} password")
    user, name = _key(db, "user", where, _text), _key(db, "name", where, _text)
    values["database_url"] = DatabaseUrl(_key(db, "host", where, _host), port, user, password, name)


def _apply_mqtt_credentials(mqtt: dict[str, Any], values: dict[str, object], path: str) -> None:
    where = f"{path} [mqtt]"
    given = {k: _string(mqtt[k], f"{where} {k}") for k in ("username", "password") if k in mqtt}
    if not (creds := {k: v for k, v in given.items() if v}):
        return
    setting = f"{where} {next(iter(creds))}"
    if not isinstance(url := values.get("mqtt_url"), MqttUrl):
        _fail(setting, "needs [mqtt] broker")
    if url.username is not None:
        _fail(setting, "conflicts with the user name in [mqtt] broker")
    if "username" not in creds:
        _fail(setting, "needs [mqtt] username")
    values["mqtt_url"] = msgspec.structs.replace(
        url, username=creds["username"], password=creds.get("password")
    )


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as e:
        _fail(path, f"cannot read the config file ({e.strerror or e})")
    except ValueError as e:  # TOMLDecodeError, UnicodeDecodeError
        _fail(path, f"is not a valid TOML file: {e}")


def _from_file(path: str) -> dict[str, object]:
    doc = _read_toml(path)
    unknown: list[str] = []
    for section, table in doc.items():
        if section not in _SPECIAL or not isinstance(table, dict):
            unknown.append(_show(section))
            continue
        known = {k for _, s, k in _FIELDS.values() if s == section} | _SPECIAL[section]
        unknown += [f"[{section}] {_show(k)}" for k in table if k not in known]
    if unknown:
        _fail(path, "unknown keys (or not a table): " + ", ".join(unknown))
    values: dict[str, object] = {}
    for field, (parse, section, key) in _FIELDS.items():
        value = doc.get(section, {}).get(key)
        if value is not None and not (value == "" and getattr(_DEFAULTS, field) is None):
            values[field] = parse(value, f"{path} [{section}] {key}")
    _apply_address(doc.get("server", {}), values, path)
    _apply_database_keys(doc.get("database", {}), values, path)
    _apply_mqtt_credentials(doc.get("mqtt", {}), values, path)
    return values


def load_settings(
    config_path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the settings: environment over the config file over the defaults."""
    env = os.environ if environ is None else environ
    path = os.fspath(config_path) if config_path is not None else env.get("IOTLEDGER_CONFIG")
    values = _from_file(path) if path else {}
    for field, (parse, _, _) in _FIELDS.items():
        if raw := env.get(name := f"IOTLEDGER_{field.upper()}", ""):
            values[field] = parse(raw, name)
    return _checked_tls(msgspec.structs.replace(Settings(), **values))


def _checked_tls(settings: Settings) -> Settings:
    """TLS files only with an mqtts:// broker, and a key only with its certificate."""
    files = {"ca": settings.mqtt_ca_file, "cert": settings.mqtt_cert_file}
    files["key"] = settings.mqtt_key_file
    given = [f"IOTLEDGER_MQTT_{name.upper()}_FILE" for name, path in files.items() if path]
    if given and not (settings.mqtt_url and settings.mqtt_url.tls):
        _fail(given[0], "needs an mqtts:// IOTLEDGER_MQTT_URL (TLS to the broker)")
    if files["key"] and not files["cert"]:
        _fail("IOTLEDGER_MQTT_KEY_FILE", "needs IOTLEDGER_MQTT_CERT_FILE (the client certificate)")
    return settings
