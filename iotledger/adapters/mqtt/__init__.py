"""MQTT: the broker link, what devices send and what is sent to them, topics, TLS."""
