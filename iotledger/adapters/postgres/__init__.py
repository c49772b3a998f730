"""PostgreSQL: the event store, the readings appender, the log feed, the views."""
