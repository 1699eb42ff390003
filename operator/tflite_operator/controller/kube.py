"""A small synchronous Kubernetes REST client on plain dicts, for the operator's sync handlers.

The kubernetes package's typed models would turn every Job into generated classes and back;
the handlers and the pure core speak JSON dicts, so this uses only its ApiClient (auth, TLS,
connection pool) and sends raw requests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import kubernetes

from tflite_operator import API_GROUP, API_VERSION

CONVERSIONS = "tfliteconversions"
TIMEOUT = 30.0


class ApiError(Exception):
    def __init__(self, status: int, body: Mapping[str, Any] | str) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, Mapping) else body
        self.reason = body.get("reason") if isinstance(body, Mapping) else None
        super().__init__(f"HTTP {status}: {message}")


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api = api_client

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster credentials in a pod, the kubeconfig ($KUBECONFIG) elsewhere."""
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=config)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=config)
        return cls(kubernetes.client.ApiClient(config))

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        m, url, headers, data, post = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()) or None,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(m, url, headers, data, post, _request_timeout=TIMEOUT)
        raw = resp.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = raw.decode(errors="replace")
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, parsed)
        return parsed if isinstance(parsed, dict) else {}

    # --- helpers by resource -------------------------------------------------------------

    @staticmethod
    def jobs_path(namespace: str | None, name: str | None = None) -> str:
        base = (
            f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs"
            if namespace
            else ("/apis/batch/v1/jobs")
        )
        return f"{base}/{quote(name)}" if name else base

    @staticmethod
    def conversion_path(namespace: str, name: str, status: bool = False) -> str:
        path = (
            f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{quote(namespace)}/{CONVERSIONS}/"
            f"{quote(name)}"
        )
        return path + "/status" if status else path

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def list(self, path: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        return list(self.request("GET", path, query=query).get("items") or [])

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body=dict(body))

    def merge_patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request(
            "PATCH", path, body=dict(body), content_type="application/merge-patch+json"
        )

    def delete(self, path: str, propagation: str = "Background") -> bool:
        """False when it was already gone. Background: the Job's pods go with it."""
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            self.request("DELETE", path, body=options)
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    def pods_of_job(self, namespace: str, job: Mapping[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return self.list(
            f"/api/v1/namespaces/{quote(namespace)}/pods",
            f"batch.kubernetes.io/controller-uid={uid}",
        )
