"""The one logging set-up of a process: one format for every library, set at start-up.

iotledger logs at `IOTLEDGER_LOG_LEVEL`; every library (uvicorn, Litestar, gmqtt,
amqtt, psycopg, ...) logs through the same handler at WARNING or above, unless the
level is DEBUG: their INFO is packet and connection chatter. `IOTLEDGER_LOG_FORMAT=json`
writes one JSON object a line (time, level, logger, message, exception, and the
fields a record carries in `extra=`, such as the access log's), for log collectors.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["exception"] = self.formatStack(record.stack_info)
        entry |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        return json.dumps(entry, default=str)


def configure_logging(level: str, log_format: str) -> None:
    """Every logger of the process to one handler on stderr, in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    ours = logging.getLevelName(level)
    root.setLevel(ours if ours == logging.DEBUG else max(ours, logging.WARNING))
    logging.getLogger("iotledger").setLevel(ours)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(
        args.exc_type, args.exc_value, args.exc_traceback
    )


def _log_uncaught(kind: type[BaseException], error: BaseException | None, trace: Any) -> None:
    """What would have been a bare traceback on stderr, as a log record in the format."""
    if error is not None and not isinstance(error, SystemExit | KeyboardInterrupt):
        logging.getLogger("iotledger").critical("uncaught error", exc_info=(kind, error, trace))
