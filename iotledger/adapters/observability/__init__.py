"""What an operator sees of a process: Prometheus metrics, logs, runtime tuning."""
