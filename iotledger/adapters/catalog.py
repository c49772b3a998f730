"""Every projection iotledger runs, with the PostgreSQL view it writes."""

from __future__ import annotations

from typing import Any

from iotledger.adapters.user_view import PostgresUserView
from iotledger.adapters.views import PostgresView
from iotledger.projections.base import Projection
from iotledger.projections.users import UserProjection

PROJECTIONS: dict[str, tuple[type[Projection[Any]], type[PostgresView[Any]]]] = {
    UserProjection.name: (UserProjection, PostgresUserView),
}
