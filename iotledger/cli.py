"""The `iotledger` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import version

import msgspec
import psycopg

from iotledger.adapters.embedded.services import EmbeddedServiceError
from iotledger.adapters.observability.logs import configure_logging
from iotledger.adapters.postgres.connections import Bounds, connection_string, for_maintenance
from iotledger.adapters.postgres.database import migrate, schema_exists
from iotledger.adapters.postgres.projection_status import ProjectionStatus, projection_statuses
from iotledger.adapters.postgres.views.catalog import PROJECTIONS
from iotledger.bootstrap import App, build
from iotledger.maintenance import rebuild, resume_projection, skip_event
from iotledger.progress import Progress
from iotledger.roles.serve import ROLES, database, run
from iotledger.settings import Settings, SettingsError, load_settings
from iotledger.simulator.command import add_simulate_command, options_from
from iotledger.simulator.run import simulate
from iotledger.simulator.server import SimulatorError

log = logging.getLogger("iotledger")


def parser() -> argparse.ArgumentParser:
    # --config is taken before or after the subcommand: every parser knows it, and one
    # given after the subcommand (SUPPRESS: only when given) wins over one before it.
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="path of config.toml (default: $IOTLEDGER_CONFIG)",
    )
    top = argparse.ArgumentParser(
        prog="iotledger",
        description="Event-sourced CQRS backend for fleets of IoT devices.",
        parents=[config],
    )
    top.add_argument("--version", action="version", version=f"iotledger {version('iotledger')}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the HTTP API, the MQTT adapter and the projections", parents=[config]
    )
    serve.add_argument(
        "--role",
        choices=("all", *ROLES),
        default="all",
        help="run one role only, to scale out over several processes (default: all)",
    )
    commands.add_parser(
        "migrate", help="create or upgrade the database tables, once", parents=[config]
    )

    projections = commands.add_parser(
        "projections", help="inspect or rebuild read models", parents=[config]
    )
    actions = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild_cmd = actions.add_parser(
        "rebuild", help="drop read models and replay them from the event store", parents=[config]
    )
    rebuild_cmd.add_argument("name", nargs="?", help="one projection (default: all)")
    status_cmd = actions.add_parser(
        "status",
        help="print each projection's position, lag and state (changes nothing)",
        parents=[config],
    )
    status_cmd.add_argument("--json", action="store_true", help="print a JSON array")
    resume_cmd = actions.add_parser(
        "resume",
        help="let a stopped projection try the event it failed on again",
        parents=[config],
    )
    resume_cmd.add_argument("name", help="the projection")
    skip_cmd = actions.add_parser(
        "skip",
        help="move a stopped projection past the one event it cannot apply (recorded)",
        parents=[config],
    )
    skip_cmd.add_argument("name", help="the projection")
    skip_cmd.add_argument(
        "--position", type=int, required=True, help="the position it fails at (see status)"
    )
    add_simulate_command(commands, [config])
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "config", None))
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "serve":
            roles = ROLES if args.role == "all" else (args.role,)
            asyncio.run(run(settings, roles))
        elif args.command == "projections" and args.action == "status":
            show_status(settings, as_json=args.json)
        elif args.command == "simulate":
            return asyncio.run(simulate(options_from(args, settings)))
        else:
            maintain(settings, args)
    except (SettingsError, EmbeddedServiceError, SimulatorError) as e:
        print(f"iotledger: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def maintain(settings: Settings, args: argparse.Namespace) -> None:
    """`migrate` and `projections ...`, with the long bounds of maintenance."""
    settings = for_maintenance(settings)
    with database(settings) as url:
        app = build(settings, url)
        try:
            migrate(url, app.ledger)
            if args.command == "projections":
                operate(app, args)
        finally:
            app.close()


def operate(app: App, args: argparse.Namespace) -> None:
    if args.action == "rebuild":
        rebuild(app, [args.name] if args.name else [], Progress())
    elif args.action == "resume":
        failure = resume_projection(app, args.name)
        print(f"{args.name}: resumed; it tries the event at position {failure.position} again")
    elif args.action == "skip":
        error = skip_event(app, args.name, args.position)
        print(f"{args.name}: skipped the event at position {args.position} ({error})")


def show_status(settings: Settings, *, as_json: bool) -> None:
    """Read-only: no migration, no generated key, no file (an embedded database that was
    never created is not created to say so)."""
    if settings.database_url is None and not (settings.data_dir / "postgres").exists():
        raise SettingsError(
            f"IOTLEDGER_DATABASE_URL: not set, and no embedded database in {settings.data_dir}"
        )
    bounds = Bounds.of(settings)
    with database(settings) as url:
        if not schema_exists(url, bounds):
            raise SettingsError(
                "IOTLEDGER_DATABASE_URL: the database has no iotledger tables; "
                "run `iotledger migrate` first"
            )
        rows = projection_statuses(
            lambda: psycopg.connect(connection_string(url, "status", bounds)),
            list(PROJECTIONS),
            {},
        )
    print(msgspec.json.encode(rows).decode() if as_json else _table(rows))


def _table(rows: list[ProjectionStatus]) -> str:
    return "\n".join(map(status_line, rows))


def status_line(row: ProjectionStatus) -> str:
    line = f"{row.name:<16} position {row.position:>12}  lag {row.lag:>10}  {row.state}"
    if row.failing_at is not None:
        line += f" at {row.failing_at}: {row.error}"
    return line


if __name__ == "__main__":
    sys.exit(main())
