"""Unit tests: the domain and the pure logic, in memory; no PostgreSQL, no broker, no
process, and each in milliseconds."""
