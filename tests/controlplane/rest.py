"""A tiny Kubernetes REST client on the standard library.

The harness (readiness probes, node readiness, draining) and the tests talk to
the API server through this instead of the `kubernetes` package because that
package's generated API changed shape between releases the project allows
(>=31), and the harness must keep working whichever one is installed. It speaks
plain JSON with the paths and field names of the API itself.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

JSON = dict[str, Any]


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        super().__init__(f"{method} {path}: HTTP {status}: {message}")


class Rest:
    def __init__(
        self, server: str, ca_file: str, cert_file: str, key_file: str, timeout: float = 30.0
    ) -> None:
        url = urllib.parse.urlsplit(server)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 443
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._ssl.load_cert_chain(cert_file, key_file)
        self._watch_socks: set[socket.socket] = set()
        self._lock = threading.Lock()

    def _connect(self, timeout: float | None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self._ssl, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        content_type: str = "application/json",
        ok: tuple[int, ...] = (200, 201, 202),
    ) -> JSON:
        # A connection per request: a local server makes it cheap, and it keeps
        # the client safe to share between threads (tests poll from a thread).
        conn = self._connect(self.timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read().decode()
            if resp.status not in ok:
                raise ApiError(method, path, resp.status, data)
            return json.loads(data) if data else {}
        finally:
            conn.close()

    def get(self, path: str) -> JSON:
        return self.request("GET", path)

    def get_text(self, path: str) -> str:
        """GET of a non-JSON endpoint such as /readyz or a Pod's log."""
        conn = self._connect(self.timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            data = resp.read().decode(errors="replace")
            if resp.status != 200:
                raise ApiError("GET", path, resp.status, data)
            return data
        finally:
            conn.close()

    def post(self, path: str, body: JSON) -> JSON:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: JSON) -> JSON:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str, body: JSON | None = None) -> JSON:
        return self.request("DELETE", path, body)

    def watch(self, path: str, resource_version: str, timeout_seconds: int) -> Iterator[JSON]:
        """Yields watch events until the server ends the watch or `close_watches()` is called."""
        sep = "&" if "?" in path else "?"
        query = urllib.parse.urlencode(
            {
                "watch": "1",
                "resourceVersion": resource_version,
                "timeoutSeconds": str(timeout_seconds),
                "allowWatchBookmarks": "false",
            }
        )
        conn = self._connect(timeout_seconds + 10)
        try:
            conn.request("GET", f"{path}{sep}{query}", headers={"Accept": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError("WATCH", path, resp.status, resp.read().decode())
            sock = conn.sock
            with self._lock:
                if sock is not None:
                    self._watch_socks.add(sock)
            try:
                while True:
                    line = resp.readline()
                    if not line:
                        return
                    if line.strip():
                        yield json.loads(line)
            except (OSError, http.client.HTTPException, ValueError):
                # close_watches() shut the socket down under us, or the server
                # went away: either way this watch is over and the caller relists.
                return
            finally:
                with self._lock:
                    self._watch_socks.discard(sock)  # type: ignore[arg-type]
        finally:
            conn.close()

    def close_watches(self) -> None:
        """Unblocks every watch that is waiting for the next event, so that a stop is prompt."""
        with self._lock:
            socks = list(self._watch_socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
