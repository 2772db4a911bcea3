"""Helper brokers never outlive whatever started them: a process that starts one and is then
killed with SIGKILL (no cleanup runs) leaves no broker behind (Linux parent-death signal)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from monitor.devservices import port_open

pytestmark = pytest.mark.integration
STARTER = """
import time
from monitor import devservices
with devservices.{helper}() as where:
    print(str(where).rsplit(":", 1)[-1], flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("helper", ["spawn_mosquitto", "tansu"])
def test_a_killed_starter_leaves_no_broker(helper: str) -> None:
    code = STARTER.format(helper=helper)
    starter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        port = int(starter.stdout.readline())
        assert port_open("127.0.0.1", port)
    finally:
        starter.kill()  # SIGKILL: the starter's own cleanup never runs
        starter.wait(10)
    deadline = time.monotonic() + 10
    while port_open("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not port_open("127.0.0.1", port), "the broker outlived its starter"
