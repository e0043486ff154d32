"""Single-machine profile only: the leases behind the local Eureka-protocol registry.

Follows Eureka's rules where clients notice them: a renewal for an unknown instance, or from a
client whose `lastDirtyTimestamp` is newer than the registry's copy, fails (404) so the client
registers again; a status override (e.g. OUT_OF_SERVICE) survives re-registration and renewals
until it is removed; removing it without a new status leaves the instance UNKNOWN, so its next
renewal fails and it re-registers with its own status. Every change is kept for
`delta_retention_s` for `/apps/delta`. No replication and no self-preservation: one registry
on one machine. Used from one event loop, so it needs no locks.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tweetpipe.eureka import (
    ActionType,
    Application,
    Applications,
    InstanceInfo,
    InstanceStatus,
    apps_hashcode,
)


@dataclass
class Lease:
    instance: InstanceInfo
    registered_ms: int
    last_renewal_ms: int
    service_up_ms: int

    def expired(self, now_ms: int) -> bool:
        return now_ms > self.last_renewal_ms + self.instance.lease_info.duration_in_secs * 1000

    def view(self) -> InstanceInfo:
        """The instance as served, with the lease's timestamps filled in."""
        lease = self.instance.lease_info.model_copy(
            update={
                "registration_timestamp": self.registered_ms,
                "last_renewal_timestamp": self.last_renewal_ms,
                "service_up_timestamp": self.service_up_ms,
            }
        )
        return self.instance.model_copy(update={"lease_info": lease})


@dataclass(frozen=True)
class Change:
    at_ms: int
    instance: InstanceInfo
    """A snapshot with `action_type` set."""


class Registry:
    def __init__(
        self, delta_retention_s: float = 180.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._apps: dict[str, dict[str, Lease]] = {}
        self._overrides: dict[str, InstanceStatus] = {}
        self._changes: deque[Change] = deque()
        self._retention_ms = int(delta_retention_s * 1000)
        self._clock = clock
        self.version = 0

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def register(self, instance: InstanceInfo) -> InstanceInfo:
        now = self._now()
        leases = self._apps.setdefault(instance.app, {})
        existing = leases.get(instance.instance_id)
        if existing and existing.instance.last_dirty_timestamp > instance.last_dirty_timestamp:
            instance = existing.instance  # the registry's copy is newer: keep it, as Eureka does
        if instance.overridden_status != "UNKNOWN":
            self._overrides.setdefault(instance.instance_id, instance.overridden_status)
        override = self._overrides.get(instance.instance_id)
        updates: dict[str, object] = {"last_updated_timestamp": now, "action_type": "ADDED"}
        if override:
            updates |= {"status": override, "overridden_status": override}
        instance = instance.model_copy(update=updates)
        service_up = existing.service_up_ms if existing else (now if instance.status == "UP" else 0)
        leases[instance.instance_id] = Lease(instance, now, now, service_up)
        self._record(leases[instance.instance_id].view())
        return instance

    def renew(self, app: str, instance_id: str, last_dirty_timestamp: int | None) -> bool:
        """False tells the client to register again (HTTP 404)."""
        lease = self._lease(app, instance_id)
        if lease is None:
            return False
        override = self._overrides.get(instance_id)
        if override and lease.instance.status != override:
            lease.instance = lease.instance.model_copy(update={"status": override})
        if lease.instance.status == "UNKNOWN":
            return False
        lease.last_renewal_ms = self._now()
        if last_dirty_timestamp is not None:
            return last_dirty_timestamp <= lease.instance.last_dirty_timestamp
        return True

    def cancel(self, app: str, instance_id: str) -> bool:
        leases = self._apps.get(app.upper(), {})
        lease = leases.pop(instance_id, None)
        if lease is None:
            return False
        self._overrides.pop(instance_id, None)
        if not leases:
            del self._apps[app.upper()]
        self._record(lease.view(), "DELETED")
        return True

    def override_status(self, app: str, instance_id: str, status: InstanceStatus) -> bool:
        lease = self._lease(app, instance_id)
        if lease is None:
            return False
        self._overrides[instance_id] = status
        self._modify(lease, {"status": status, "overridden_status": status})
        return True

    def remove_override(self, app: str, instance_id: str, status: InstanceStatus | None) -> bool:
        lease = self._lease(app, instance_id)
        if lease is None:
            return False
        self._overrides.pop(instance_id, None)
        self._modify(lease, {"status": status or "UNKNOWN", "overridden_status": "UNKNOWN"})
        return True

    def update_metadata(self, app: str, instance_id: str, items: Mapping[str, str]) -> bool:
        lease = self._lease(app, instance_id)
        if lease is None:
            return False
        self._modify(lease, {"metadata": {**lease.instance.metadata, **items}})
        return True

    def evict(self) -> list[InstanceInfo]:
        """Drop every instance whose lease ran out; they show as DELETED in the delta."""
        now = self._now()
        current = [(app, lease) for app, leases in self._apps.items() for lease in leases.values()]
        evicted = []
        for app, lease in current:
            if lease.expired(now):
                self.cancel(app, lease.instance.instance_id)
                evicted.append(lease.instance)
        return evicted

    def applications(self) -> Applications:
        return self._bundle(lease.view() for lease in self._all_leases())

    def delta(self) -> Applications:
        self._prune()
        latest = {change.instance.instance_id: change.instance for change in self._changes}
        return self._bundle(latest.values())

    def application(self, app: str) -> Application | None:
        leases = self._apps.get(app.upper())
        if not leases:
            return None
        return Application(name=app.upper(), instance=[lease.view() for lease in leases.values()])

    def instance(self, instance_id: str, app: str | None = None) -> InstanceInfo | None:
        for lease in self._all_leases():
            same_app = app is None or lease.instance.app == app.upper()
            if same_app and lease.instance.instance_id == instance_id:
                return lease.view()
        return None

    def by_vip(self, vip: str, secure: bool = False) -> Applications:
        def matches(instance: InstanceInfo) -> bool:
            address = instance.secure_vip_address if secure else instance.vip_address
            return vip in (address or "").split(",")

        return self._bundle(v for lease in self._all_leases() if matches(v := lease.view()))

    def count(self) -> int:
        return sum(len(leases) for leases in self._apps.values())

    def _lease(self, app: str, instance_id: str) -> Lease | None:
        return self._apps.get(app.upper(), {}).get(instance_id)

    def _all_leases(self) -> list[Lease]:
        return [lease for leases in self._apps.values() for lease in leases.values()]

    def _modify(self, lease: Lease, updates: dict[str, object]) -> None:
        updates |= {"last_updated_timestamp": self._now(), "action_type": "MODIFIED"}
        lease.instance = lease.instance.model_copy(update=updates)
        self._record(lease.view())

    def _record(self, instance: InstanceInfo, action: ActionType | None = None) -> None:
        if action is not None:
            instance = instance.model_copy(update={"action_type": action})
        self.version += 1
        self._changes.append(Change(self._now(), instance))
        self._prune()

    def _prune(self) -> None:
        horizon = self._now() - self._retention_ms
        while self._changes and self._changes[0].at_ms < horizon:
            self._changes.popleft()

    def _bundle(self, instances: Iterable[InstanceInfo]) -> Applications:
        by_app: dict[str, list[InstanceInfo]] = {}
        for instance in instances:
            by_app.setdefault(instance.app, []).append(instance)
        return Applications(
            versions_delta=str(self.version),
            apps_hashcode=apps_hashcode(lease.instance for lease in self._all_leases()),
            application=[Application(name=name, instance=items) for name, items in by_app.items()],
        )
