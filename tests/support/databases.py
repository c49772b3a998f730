"""Databases of the tests' own on one PostgreSQL server, and iotledger's services on them.

The server is the machine's (127.0.0.1:5432, or IOTLEDGER_TEST_POSTGRES) when it answers,
an embedded one otherwise; each database is created for its tests and dropped after them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from iotledger.adapters.postgres.database import migrate
from iotledger.bootstrap import App, build
from iotledger.settings import DatabaseUrl, Settings

LOCAL_POSTGRES = os.environ.get(
    "IOTLEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def create_database(server: DatabaseUrl) -> DatabaseUrl:
    name = f"iotledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(str(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return DatabaseUrl(server.host, server.port, server.user, server.password, name)


def drop_database(server: DatabaseUrl, url: DatabaseUrl) -> None:
    with psycopg.connect(str(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.dbname}" WITH (FORCE)')


@contextmanager
def new_database(server: DatabaseUrl) -> Iterator[DatabaseUrl]:
    """A database of the test's own on `server`, dropped at the end of the block."""
    url = create_database(server)
    try:
        yield url
    finally:
        drop_database(server, url)


def start_services(settings: Settings, url: DatabaseUrl) -> App:
    """Every part of iotledger on `url`, migrated and watching; no projection runs yet."""
    services = build(settings, url)
    migrate(url, services.ledger)
    services.watch.start()
    return services


@contextmanager
def migrated_services(settings: Settings, url: DatabaseUrl) -> Iterator[App]:
    """Every part on `url`, migrated, with no projection running: the test runs what it needs,
    when it needs it. Closed at the end of the block."""
    services = build(settings, url)
    migrate(url, services.ledger)
    try:
        yield services
    finally:
        services.close()
