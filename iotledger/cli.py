"""The `iotledger` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

import msgspec

from iotledger.adapters.database import migrate
from iotledger.adapters.embedded import EmbeddedServiceError
from iotledger.adapters.settings import Settings, SettingsError, load_settings
from iotledger.bootstrap import Services, bootstrap
from iotledger.maintenance import (
    ProjectionStatus,
    rebuild,
    resume_projection,
    skip_event,
    status,
)
from iotledger.serve import ROLES, database, run

log = logging.getLogger("iotledger")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="iotledger",
        description="Event-sourced CQRS backend for fleets of IoT devices.",
    )
    top.add_argument("--config", help="path of config.toml (default: $IOTLEDGER_CONFIG)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the HTTP API, the MQTT adapter and the projections"
    )
    serve.add_argument(
        "--role",
        choices=("all", *ROLES),
        default="all",
        help="run one role only, to scale out over several processes (default: all)",
    )
    commands.add_parser("migrate", help="create or upgrade the database tables, once")

    projections = commands.add_parser("projections", help="inspect or rebuild read models")
    actions = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild_cmd = actions.add_parser(
        "rebuild", help="drop read models and replay them from the event store"
    )
    rebuild_cmd.add_argument("name", nargs="?", help="one projection (default: all)")
    status_cmd = actions.add_parser(
        "status", help="print each projection's position, lag and state (failing, stopped)"
    )
    status_cmd.add_argument("--json", action="store_true", help="print JSON")
    resume_cmd = actions.add_parser(
        "resume", help="let a stopped projection try the event it failed on again"
    )
    resume_cmd.add_argument("name", help="the projection")
    skip_cmd = actions.add_parser(
        "skip", help="move a stopped projection past the one event it cannot apply (recorded)"
    )
    skip_cmd.add_argument("name", help="the projection")
    skip_cmd.add_argument(
        "--position", type=int, required=True, help="the position it fails at (see status)"
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            force=True,
        )
        if args.command == "serve":
            roles = ROLES if args.role == "all" else (args.role,)
            asyncio.run(run(settings, roles))
        else:
            maintain(settings, args)
    except (SettingsError, EmbeddedServiceError) as e:
        print(f"iotledger: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def maintain(settings: Settings, args: argparse.Namespace) -> None:
    with database(settings) as url:
        services = bootstrap(settings, url)
        try:
            migrate(url, services.ledger)
            if args.command == "projections":
                operate(services, args)
        finally:
            services.close()


def operate(services: Services, args: argparse.Namespace) -> None:
    if args.action == "rebuild":
        rebuild(services, [args.name] if args.name else [], progress_bar)
    elif args.action == "resume":
        failure = resume_projection(services, args.name)
        print(f"{args.name}: resumed; it tries the event at position {failure.position} again")
    elif args.action == "skip":
        error = skip_event(services, args.name, args.position)
        print(f"{args.name}: skipped the event at position {args.position} ({error})")
    elif args.json:
        print(msgspec.json.encode(status(services)).decode())
    else:
        for row in status(services):
            print(status_line(row))


def status_line(row: ProjectionStatus) -> str:
    line = f"{row.name:<16} position {row.position:>12}  lag {row.lag:>10}  {row.state}"
    if row.failing_at is not None:
        line += f" at {row.failing_at}: {row.error}"
    return line


def progress_bar(name: str, done: int, total: int) -> None:
    width = 40
    fraction = 1.0 if total == 0 else min(done / total, 1.0)
    filled = int(width * fraction)
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done >= total else ""
    print(f"\r{name:<16} [{bar}] {fraction:6.1%} {done}/{total}", end=end, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
