"""Helper brokers never outlive whatever started them: a process that starts one and is then
killed with SIGKILL (no cleanup runs) leaves no broker behind (Linux parent-death signal).
And a helper is used only once it listens itself: a free port that another process takes
first (parallel tests do) means another port, never someone else's server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import aiomqtt
import pytest

from monitor import devservices
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


@pytest.mark.parametrize("helper", ["spawn_mosquitto", "tansu"])
async def test_a_taken_port_means_another_port(
    helper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:  # takes the "free" port first, and answers on it
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken, devservices.free_port()])
        monkeypatch.setattr(devservices, "free_port", lambda: next(ports))
        with getattr(devservices, helper)() as where:
            port = int(str(where).rsplit(":", 1)[-1])
            assert port != taken
            if helper == "spawn_mosquitto":  # the broker on the new port is the helper
                async with aiomqtt.Client("127.0.0.1", port, identifier="taken-port") as c:
                    await c.publish("riskmon/test/taken", b"1")
            else:
                await devservices.create_topics(where, {"riskmon.taken": 1})
        refused = pytest.raises(RuntimeError, match=f"did not start on port {taken}")
        with refused, devservices.spawn_mosquitto(port=taken):
            pass
