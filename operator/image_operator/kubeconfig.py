"""The cluster a command-line tool talks to, found as kubectl finds it: `--kubeconfig`, else
KUBECONFIG, else ~/.kube/config, with `--context` or the current context and that context's
namespace; inside a Pod without any kubeconfig, the Pod's service account."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class Cluster:
    api: client.ApiClient
    namespace: str  # the context's namespace, or "default"
    context: str  # the context used ("in-cluster" inside a Pod)
    server: str


def _has_kubeconfig(path: str | None) -> bool:
    if path:
        return True
    listed = os.environ.get("KUBECONFIG", "")
    if listed:
        return True
    return Path(config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION).expanduser().exists()


def connect(kubeconfig: str | None = None, context: str | None = None) -> Cluster:
    """A client for the cluster; raises `config.ConfigException` with kubernetes' reason when
    there is no usable configuration."""
    if (
        not _has_kubeconfig(kubeconfig)
        and context is None
        and os.environ.get("KUBERNETES_SERVICE_HOST")
    ):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        namespace = "default"
        if SERVICE_ACCOUNT_NAMESPACE.exists():
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or namespace
        api = client.ApiClient()
        return Cluster(api, namespace, "in-cluster", str(api.configuration.host))
    contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=kubeconfig
    )
    if context is not None:
        chosen = next((c for c in contexts or [] if c.get("name") == context), None)
        if chosen is None:
            raise config.ConfigException(f"context {context!r} is not in the kubeconfig")
    else:
        chosen = active or {}
    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context
    )
    namespace = str((chosen.get("context") or {}).get("namespace") or "default")
    return Cluster(api, namespace, str(chosen.get("name", "")), str(api.configuration.host))
