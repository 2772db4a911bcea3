"""District outlines for the console's map: a GeoJSON FeatureCollection of polygons
(``RISKMON_CONSOLE_DISTRICTS``), checked when the settings are read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHAPES = ("Polygon", "MultiPolygon")


def read(path: Path) -> dict[str, Any]:
    """The outlines; ValueError saying what is wrong in one line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"cannot read {str(path)!r}: {err.strerror}") from err
    except ValueError as err:
        raise ValueError(f"{str(path)!r} is not JSON: {err}") from err
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError(f"{str(path)!r} is not a GeoJSON FeatureCollection")
    for i, feature in enumerate(data.get("features") or []):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") not in SHAPES:
            raise ValueError(f"{str(path)!r}: feature {i} is not a Polygon or MultiPolygon")
    return data
