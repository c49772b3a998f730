"""The application services: each command loads aggregates, decides by them, saves."""
