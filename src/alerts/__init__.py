"""riskmon alerts package."""
