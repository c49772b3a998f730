"""The read models in PostgreSQL: what each projection writes and each query reads."""
