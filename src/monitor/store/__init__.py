"""PostgreSQL / TimescaleDB store."""
