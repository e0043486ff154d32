"""Eureka's instance and application documents, in the JSON shape Netflix Eureka uses.

The local registry validates registrations with these models and renders its answers from them;
discovery parses the registry's (or a real Eureka server's) answers with them. Eureka's JSON has
quirks kept here on purpose, because clients depend on them: ports are `{"$": 8080,
"@enabled": "true"}`, some booleans and timestamps are strings, empty metadata is
`{"@class": "java.util.Collections$EmptyMap"}`, and `versions__delta` / `apps__hashcode` carry
the registry version and a digest of instance counts by status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

InstanceStatus = Literal["UP", "DOWN", "STARTING", "OUT_OF_SERVICE", "UNKNOWN"]
STATUSES: tuple[InstanceStatus, ...] = ("UP", "DOWN", "STARTING", "OUT_OF_SERVICE", "UNKNOWN")
ActionType = Literal["ADDED", "MODIFIED", "DELETED"]
DEFAULT_DATA_CENTER_CLASS = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
EMPTY_MAP_CLASS = "java.util.Collections$EmptyMap"


class _EurekaModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class PortInfo(_EurekaModel):
    port: int = Field(alias="$")
    enabled: bool = Field(default=True, alias="@enabled")

    @field_serializer("enabled")
    def _enabled_text(self, enabled: bool) -> str:
        return "true" if enabled else "false"


class DataCenterInfo(_EurekaModel):
    class_name: str = Field(default=DEFAULT_DATA_CENTER_CLASS, alias="@class")
    name: str = "MyOwn"


class LeaseInfo(_EurekaModel):
    renewal_interval_in_secs: int = Field(default=30, ge=1)
    duration_in_secs: int = Field(default=90, ge=1)
    registration_timestamp: int = 0
    last_renewal_timestamp: int = 0
    eviction_timestamp: int = 0
    service_up_timestamp: int = 0


class InstanceInfo(_EurekaModel):
    """One registered instance (`instance` in Eureka's documents)."""

    instance_id: str = ""
    """Unique per instance; Eureka falls back to the host name when a client sends none."""
    host_name: str = Field(min_length=1)
    app: str = Field(min_length=1)
    ip_addr: str = Field(min_length=1)
    status: InstanceStatus = "UP"
    overridden_status: InstanceStatus = Field(
        default="UNKNOWN",
        validation_alias=AliasChoices("overriddenStatus", "overriddenstatus"),
    )
    port: PortInfo = PortInfo(port=7001, enabled=True)
    secure_port: PortInfo = PortInfo(port=7002, enabled=False)
    country_id: int = 1
    data_center_info: DataCenterInfo
    lease_info: LeaseInfo = LeaseInfo()
    metadata: dict[str, str] = Field(default_factory=dict)
    home_page_url: str | None = None
    status_page_url: str | None = None
    health_check_url: str | None = None
    secure_health_check_url: str | None = None
    vip_address: str | None = None
    secure_vip_address: str | None = None
    is_coordinating_discovery_server: bool = False
    last_updated_timestamp: int = 0
    last_dirty_timestamp: int = 0
    action_type: ActionType | None = None

    @field_validator("app")
    @classmethod
    def _upper_app(cls, app: str) -> str:
        return app.upper()

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_strings(cls, value: Any) -> dict[str, str]:
        if not value:
            return {}
        if not isinstance(value, dict):
            raise ValueError("metadata must be a mapping")
        return {str(k): "" if v is None else str(v) for k, v in value.items() if k != "@class"}

    @model_validator(mode="after")
    def _default_id(self) -> InstanceInfo:
        if not self.instance_id:
            self.instance_id = self.host_name
        return self

    @field_serializer("metadata")
    def _metadata_out(self, metadata: dict[str, str]) -> dict[str, str]:
        return metadata or {"@class": EMPTY_MAP_CLASS}

    @field_serializer("is_coordinating_discovery_server")
    def _bool_text(self, value: bool) -> str:
        return "true" if value else "false"

    @field_serializer("last_updated_timestamp", "last_dirty_timestamp")
    def _timestamp_text(self, value: int) -> str:
        return str(value)

    @property
    def base_url(self) -> str:
        """Where to send requests: the plain port when enabled, else the secure one."""
        if self.port.enabled or not self.secure_port.enabled:
            return f"http://{self.host_name}:{self.port.port}"
        return f"https://{self.host_name}:{self.secure_port.port}"

    def document(self) -> dict[str, Any]:
        """The JSON object Eureka writes for this instance."""
        return self.model_dump(by_alias=True, exclude_none=True)


def _as_list(value: Any) -> Any:
    """Old Eureka servers write a lone element as an object instead of a one-item list."""
    if isinstance(value, dict):
        return [value]
    return [] if value is None else value


class Application(_EurekaModel):
    name: str
    instance: list[InstanceInfo] = Field(default_factory=list)

    _instances_as_list = field_validator("instance", mode="before")(_as_list)


class Applications(_EurekaModel):
    versions_delta: str = Field(default="1", alias="versions__delta")
    apps_hashcode: str = Field(default="", alias="apps__hashcode")
    application: list[Application] = Field(default_factory=list)

    _applications_as_list = field_validator("application", mode="before")(_as_list)


class InstanceEnvelope(BaseModel):
    instance: InstanceInfo


class ApplicationEnvelope(BaseModel):
    application: Application


class ApplicationsEnvelope(BaseModel):
    applications: Applications


def apps_hashcode(instances: Iterable[InstanceInfo]) -> str:
    """Eureka's reconcile hash: `STATUS_count_` for each status present, statuses sorted."""
    counts = Counter(instance.status for instance in instances)
    return "".join(f"{status}_{counts[status]}_" for status in sorted(counts))
