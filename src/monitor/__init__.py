"""riskmon monitor package."""
