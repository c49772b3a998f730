"""The embedded PostgreSQL and MQTT broker a machine without either runs."""
