"""The `simulate` subcommand's arguments, and the options they make."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from iotledger.settings import MqttUrl, Settings, parse_mqtt_url
from iotledger.simulator.run import Options
from iotledger.simulator.server import SimulatorError

Number = TypeVar("Number", int, float)


def add_simulate_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="run simulated devices against a running server (readings, commands)",
        description=(
            "Sign in (registering a user), create devices with credentials, connect each "
            "over MQTT with its own credentials, publish readings at the total rate, answer "
            "every command, then check that every reading the broker acknowledged is "
            "queryable through the API (exit 1 if not)."
        ),
        parents=parents,
    )
    simulate.add_argument("--devices", type=_positive(int), default=10, help="default: 10")
    simulate.add_argument(
        "--rate", type=_positive(float), default=100.0, help="readings per second in all"
    )
    simulate.add_argument("--duration", type=_positive(float), default=30.0, help="seconds")
    simulate.add_argument(
        "--url", help="the server's HTTP API (default: http://127.0.0.1:$IOTLEDGER_PORT, 8080)"
    )
    simulate.add_argument(
        "--mqtt",
        help="the broker the server uses (default: $IOTLEDGER_MQTT_URL's host, else the "
        "embedded one, mqtt://127.0.0.1:$IOTLEDGER_EMBEDDED_MQTT_PORT)",
    )
    simulate.add_argument("--topic", help="base topic (default: the server's, from /mqttping)")
    simulate.add_argument("--username", help="sign in as this user (registered if unknown)")
    simulate.add_argument("--password", help="the user's password")
    simulate.add_argument(
        "--settle",
        type=_positive(float),
        default=30.0,
        help="seconds to wait at the end for readings to be queryable (default: 30)",
    )


def options_from(args: argparse.Namespace, settings: Settings) -> Options:
    if (args.username is None) != (args.password is None):
        raise SimulatorError("--username and --password go together")
    return Options(
        devices=args.devices,
        rate=args.rate,
        duration=args.duration,
        url=(args.url or f"http://127.0.0.1:{settings.port}").rstrip("/"),
        broker=parse_mqtt_url(args.mqtt, "--mqtt") if args.mqtt else _server_broker(settings),
        topic=args.topic,
        username=args.username,
        password=args.password,
        settle=args.settle,
    )


def _server_broker(settings: Settings) -> MqttUrl:
    """The broker of this machine's settings, without the server's own account."""
    if settings.mqtt_url is None:
        return MqttUrl("127.0.0.1", settings.embedded_mqtt_port, None, None)
    return MqttUrl(settings.mqtt_url.host, settings.mqtt_url.port, None, None)


def _positive(kind: Callable[[str], Number]) -> Callable[[str], Number]:
    def parse(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above 0")
        return value

    return parse
