"""Integration tests: iotledger in this process against the real PostgreSQL and broker
(or embedded ones): the API through its test client, the MQTT role on a loop thread, the
projections, the views and the event store."""
