"""The API against its own contract: schemathesis fuzzes every operation of the real service.

The outside probe found 264–278 answers 500, 176 error bodies of another shape than declared,
32 undocumented status codes and 43 schema-valid requests refused.  Here the service runs
against PostgreSQL and Mosquitto; schemathesis (its command, as an operator would run it)
generates requests from /openapi.json in every phase, with the admin token and with an
enterprise's token.  No 5xx, no answer outside the contract.

The only refusals of schema-valid requests left are checks across fields that JSON Schema
cannot say (README, "API"): a range whose start is not before its end, a shelve that expires in
the past, levels out of order, a merge patch whose result is not a valid rule, and a risk
matrix that is not monotone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Settings
from monitor.testing import TEST_ADMIN_TOKEN, running_service

pytestmark = pytest.mark.integration

CROSS_FIELD = {
    "GET /api/v1/sensors/{sensor_id}/readings",  # from before to
    "GET /api/v1/sites/{site_id}/readings",  # from before to
    "POST /api/v1/rules/backtest",  # from before to, levels in order
    "POST /api/v1/silences",  # ends after starts
    "GET /api/v1/reports/alarm-load",  # since before until
    "POST /api/v1/alerts/{alert_id}/shelve",  # until in the future
    "PUT /api/v1/rules/{rule_id}",  # levels in order, window fits the baseline
    "PATCH /api/v1/rules/{rule_id}",  # the patched rule must be a rule
    "PUT /api/v1/risk/models/{name}",  # the risk matrix monotone
}
TENANT = {"token": "fuzz-tenant", "name": "wang", "role": "operator", "tenant": "t1"}


async def fuzz(base_url: str, token: str, report: Path, examples: int) -> dict[str, Any]:
    st = Path(__file__).parents[2] / ".venv" / "bin" / "st"
    command = [
        str(st) if st.exists() else "st", "run", f"{base_url}/openapi.json",
        "-H", f"Authorization: Bearer {token}",
        "--max-examples", str(examples), "--workers", "1", "--seed", "20261201",
        "--request-timeout", "30",  # a loaded CI machine: a slow answer is not a network error
        "--exclude-path", "/api/v1/stream",  # an endless event stream, tested in test_stream
        "--report", "json", "--report-json-path", str(report), "--no-color",
    ]  # fmt: skip
    for attempt in range(2):
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        assert report.exists(), out.decode()[-3000:]
        result: dict[str, Any] = json.loads(report.read_text())
        result["output"] = out.decode()
        # CPython 3.11's ast.parse is not thread-safe: hypothesis describing a filter in two of
        # schemathesis's worker threads at once crashed the fuzzer itself ("AST constructor
        # recursion depth mismatch", twice in a row in CI), which says nothing about the API.
        # Each run has one worker (the two runs go side by side as processes); should the
        # fuzzer still crash, that run is made once more
        if not (attempt == 0 and result["errors"] and _FUZZER_CRASH in result["output"]):
            break
    return result


_FUZZER_CRASH = "AST constructor recursion depth mismatch"


def check(result: dict[str, Any]) -> None:
    tail = result["output"][-6000:]
    assert result["errors"] == [], tail
    assert result["operations"]["tested"] == result["operations"]["selected"] >= 33, tail
    assert result["test_cases"]["generated"] > 1000, tail
    for failure in result["failures"]:
        assert failure["code"] == "ST202", tail  # no 5xx, no answer outside the contract
        assert set(failure["operations"]) <= CROSS_FIELD, tail


@pytest.mark.timeout(600)  # two schemathesis runs side by side: about 120 s alone
async def test_the_api_keeps_its_contract_under_fuzzing(settings: Settings, tmp_path: Path) -> None:
    update = {"tokens": [TENANT], "admin_token": TEST_ADMIN_TOKEN, "auth_failures_max": 10_000}
    settings = settings.model_copy(update=update)
    async with running_service(settings) as svc:
        admin, tenant = await asyncio.gather(
            fuzz(svc.base_url, TEST_ADMIN_TOKEN, tmp_path / "admin.json", 30),
            fuzz(svc.base_url, TENANT["token"], tmp_path / "tenant.json", 15),
        )
        check(admin)
        check(tenant)
        async with svc.client() as api:  # still serving, nothing stuck behind the fuzzing
            assert (await api.get("/healthz")).status_code == 200
            assert (await api.get("/readyz")).json()["checks"]["store"] == "ok"
