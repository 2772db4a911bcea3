"""riskmon rules package."""
