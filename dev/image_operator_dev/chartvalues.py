"""The Helm chart's values as a typed model: the source of charts/image-operator/values.schema.json.

`settings` is derived from the operator's own Settings model, so the chart can set exactly the
settings the operator reads (minus the ones the chart wires itself: namespaces, peering, ports).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, create_model
from pydantic.alias_generators import to_camel

from image_operator.settings import Settings

# Set by the chart from other values (watchNamespaces, peering, sharding, metrics.port,
# healthPort), or deliberately never (peering_priority: one value for every replica would make
# them all pause; each process picks its own).
CHART_WIRED_SETTINGS = frozenset(
    {
        "namespaces",
        "standalone",
        "peering_name",
        "peering_priority",
        "metrics_port",
        "health_port",
        "shards",
        "shard_index",
    }
)


class _Values(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _settings_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (
            _chart_type(info.annotation),
            Field(
                description=info.description,
                json_schema_extra=None,
                **_default(info),
                **_constraints(info),
            ),
        )
        for name, info in Settings.model_fields.items()
        if name not in CHART_WIRED_SETTINGS
    }
    return create_model("ChartSettings", __base__=_Values, **fields)


def _chart_type(annotation: Any) -> Any:
    """The type a value has in values.yaml: addresses and networks are plain strings there
    (JSON Schema has no format for a CIDR; the operator validates them when it starts)."""
    if annotation == list[IPvAnyNetwork]:
        return list[str]
    return annotation


def _default(info: Any) -> dict[str, Any]:
    if info.default_factory is not None:
        return {"default_factory": info.default_factory}
    return {"default": info.default}


def _constraints(info: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in info.metadata:
        for key in ("ge", "le", "gt", "lt"):
            value = getattr(item, key, None)
            if value is not None:
                out[key] = value
    return out


ChartSettings = _settings_model()


class ImageValues(_Values):
    repository: str = Field(min_length=1)
    tag: str = ""
    pull_policy: str = Field(default="IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")


class PeeringValues(_Values):
    enabled: bool = True
    name: str = Field(default="image-operator", min_length=1, max_length=253)


class ShardingValues(_Values):
    shards: int = Field(default=1, ge=1, le=64)


class MetricsServiceValues(_Values):
    enabled: bool = True
    port: int = Field(default=9090, ge=1, le=65535)


class ServiceMonitorValues(_Values):
    enabled: bool = False
    interval: str = Field(default="30s", pattern=r"^[0-9]+(ms|s|m|h)$")
    labels: dict[str, str] = Field(default_factory=dict)


#: A Prometheus duration, as `for:` and range selectors take it.
_DURATION = r"^[0-9]+(ms|s|m|h|d|w)$"


class PrometheusRuleValues(_Values):
    """The alerts of templates/prometheusrule.yaml and their thresholds (docs/troubleshooting.md,
    "Alerts")."""

    enabled: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    runbook_url: str = Field(
        default="",
        description="Base of the runbook links (an anchor per alert is appended); empty: "
        "docs/troubleshooting.md of the chart's sources.",
    )
    down_for: str = Field(default="5m", pattern=_DURATION)
    stalled_for: str = Field(default="30m", pattern=_DURATION)
    sustained_for: str = Field(default="15m", pattern=_DURATION)
    rate_window: str = Field(default="10m", pattern=_DURATION)
    stuck_for: str = Field(default="30m", pattern=_DURATION)
    cloud_error_ratio: float = Field(default=0.2, gt=0, le=1)
    cloud_ok_outcomes: str = Field(
        default="ok|NotFound|AlreadyExists|Throttled",
        min_length=1,
        description="Outcomes of imageops_cloud_requests_total (a regex) that are no failure.",
    )
    cloud_throttled_ratio: float = Field(default=0.2, gt=0, le=1)
    reconcile_latency_quantile: float = Field(default=0.95, gt=0, lt=1)
    reconcile_latency_seconds: float = Field(default=10, gt=0)
    reconcile_error_ratio: float = Field(default=0.5, gt=0, le=1)


class GrafanaDashboardValues(_Values):
    enabled: bool = False
    labels: dict[str, str] = Field(default_factory=lambda: {"grafana_dashboard": "1"})
    annotations: dict[str, str] = Field(default_factory=dict)
    namespace: str = ""


class MetricsValues(_Values):
    port: int = Field(default=9090, ge=1, le=65535)
    service: MetricsServiceValues = Field(default_factory=MetricsServiceValues)
    service_monitor: ServiceMonitorValues = Field(default_factory=ServiceMonitorValues)
    prometheus_rule: PrometheusRuleValues = Field(default_factory=PrometheusRuleValues)
    grafana_dashboard: GrafanaDashboardValues = Field(default_factory=GrafanaDashboardValues)


class ServiceAccountValues(_Values):
    create: bool = True
    name: str = ""
    annotations: dict[str, str] = Field(default_factory=dict)


class RbacValues(_Values):
    create: bool = True
    secret_names: list[str] = Field(default_factory=list)


class PdbValues(_Values):
    enabled: bool = True
    min_available: int = Field(default=1, ge=0)


class ChartValues(_Values):
    """Everything values.yaml may hold."""

    image: ImageValues
    image_pull_secrets: list[dict[str, str]] = Field(default_factory=list)
    replica_count: int = Field(default=2, ge=0, le=10)
    watch_namespaces: list[str] = Field(default_factory=list)
    peering: PeeringValues = Field(default_factory=PeeringValues)
    sharding: ShardingValues = Field(default_factory=ShardingValues)
    settings: ChartSettings = Field(default_factory=ChartSettings)  # type: ignore[valid-type]
    metrics: MetricsValues = Field(default_factory=MetricsValues)
    health_port: int = Field(default=8080, ge=1, le=65535)
    service_account: ServiceAccountValues = Field(default_factory=ServiceAccountValues)
    rbac: RbacValues = Field(default_factory=RbacValues)
    pod_disruption_budget: PdbValues = Field(default_factory=PdbValues)
    resources: dict[str, Any] = Field(default_factory=dict)
    pod_security_context: dict[str, Any] = Field(default_factory=dict)
    security_context: dict[str, Any] = Field(default_factory=dict)
    pod_annotations: dict[str, str] = Field(default_factory=dict)
    pod_labels: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] = Field(default_factory=dict)
    priority_class_name: str = ""


def values_schema() -> str:
    """values.schema.json text (Helm validates values against it on install/upgrade/lint)."""
    schema = ChartValues.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft-07/schema#"
    schema["title"] = "image-operator chart values"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
