"""riskmon ingest package."""
