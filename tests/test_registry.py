"""The local Eureka-protocol registry, with py-eureka-client and real service processes."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError

import httpx
import pytest
from py_eureka_client import eureka_basic
from py_eureka_client.eureka_client import EurekaClient

from devstack.broker import TansuBroker
from tests.support.ports import free_port
from tests.support.registry import RegistryProcess
from tests.support.services import ServiceProcess, metric_value
from tweetpipe.discovery import Discovery, Registration, instance_spec
from tweetpipe.settings import EurekaSettings, ServiceSettings
from tweetpipe.waiting import wait_until

JSON = {"Accept": "application/json"}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    with RegistryProcess(tmp_path / "registry.log", eviction_interval_s=0.3) as running:
        yield running


def client_instance(
    app: str, port: int, duration_s: int = 90, instance_id: str | None = None
) -> eureka_basic.Instance:
    """An instance as py-eureka-client's own registration calls describe it."""
    return eureka_basic.Instance(
        instanceId=instance_id or f"127.0.0.1:{app.lower()}:{port}",
        app=app,
        hostName="127.0.0.1",
        ipAddr="127.0.0.1",
        port=eureka_basic.PortWrapper(port=port, enabled=True),
        dataCenterInfo=eureka_basic.DataCenterInfo(),
        leaseInfo=eureka_basic.LeaseInfo(durationInSecs=duration_s),
        status="UP",
        overriddenstatus="UNKNOWN",
        lastDirtyTimestamp=int(time.time() * 1000),
        vipAddress=app.lower(),
        secureVipAddress=app.lower(),
    )


def json_instance(app: str, port: int) -> dict[str, object]:
    """A registration body as Spring's Eureka client sends it."""
    return {
        "instance": {
            "instanceId": f"127.0.0.1:{app.lower()}:{port}",
            "hostName": "127.0.0.1",
            "app": app,
            "ipAddr": "127.0.0.1",
            "status": "UP",
            "overriddenStatus": "UNKNOWN",
            "port": {"$": port, "@enabled": "true"},
            "securePort": {"$": 443, "@enabled": "false"},
            "countryId": 1,
            "dataCenterInfo": {
                "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                "name": "MyOwn",
            },
            "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 90},
            "metadata": {"version": "1.2.3"},
            "vipAddress": app.lower(),
            "secureVipAddress": app.lower(),
            "isCoordinatingDiscoveryServer": "false",
            "lastUpdatedTimestamp": "1700000000000",
            "lastDirtyTimestamp": "1700000000000",
        }
    }


XML_INSTANCE = """<instance>
  <instanceId>127.0.0.1:xml-service:9302</instanceId>
  <hostName>127.0.0.1</hostName>
  <app>XML-SERVICE</app>
  <ipAddr>127.0.0.1</ipAddr>
  <status>UP</status>
  <overriddenstatus>UNKNOWN</overriddenstatus>
  <port enabled="true">9302</port>
  <securePort enabled="false">443</securePort>
  <countryId>1</countryId>
  <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">
    <name>MyOwn</name>
  </dataCenterInfo>
  <leaseInfo><durationInSecs>90</durationInSecs></leaseInfo>
  <metadata><zone>local</zone></metadata>
  <vipAddress>xml-service</vipAddress>
  <lastDirtyTimestamp>1700000000000</lastDirtyTimestamp>
</instance>"""


def test_py_eureka_client_registers_renews_and_cancels(registry: RegistryProcess) -> None:
    async def scenario() -> None:
        # The client's heartbeat thread cannot be stopped once it has fired (it registers the
        # instance again after stop()), so renewals here are explicit and the timer never fires.
        client = EurekaClient(
            eureka_server=registry.url,
            app_name="demo-service",
            instance_host="127.0.0.1",
            instance_ip="127.0.0.1",
            instance_port=9301,
            renewal_interval_in_secs=3600,
            metadata={"version": "7"},
        )
        await client.start()
        app = await eureka_basic.get_application(registry.url, "DEMO-SERVICE")  # XML
        [instance] = app.instances
        assert (instance.instanceId, instance.status, instance.port.port) == (
            "127.0.0.1:demo-service:9301",
            "UP",
            9301,
        )
        assert instance.metadata["version"] == "7"
        assert instance.healthCheckUrl == "http://127.0.0.1:9301/health"
        # its own full-registry pull parsed our XML too
        pulled = client.applications.get_application("DEMO-SERVICE")
        assert [i.instanceId for i in pulled.instances] == ["127.0.0.1:demo-service:9301"]
        registered_at = instance.leaseInfo.lastRenewalTimestamp

        await asyncio.sleep(0.05)
        await client.send_heartbeat()
        await client.send_heartbeat()
        renewed = await eureka_basic.get_app_instance(
            registry.url, "DEMO-SERVICE", "127.0.0.1:demo-service:9301"
        )
        assert renewed.leaseInfo.lastRenewalTimestamp > registered_at
        assert metric_value(registry.port, "tweetpipe_registry_renewals_total") == 2

        await client.stop()
        assert registry.app("DEMO-SERVICE") is None
        delta = await eureka_basic.get_delta(registry.url)
        actions = [i.actionType for a in delta.applications for i in a.instances]
        assert actions == ["DELETED"]
        assert metric_value(registry.port, "tweetpipe_registry_cancels_total") == 1

    asyncio.run(scenario())


def test_json_and_xml_registrations_and_answers(registry: RegistryProcess) -> None:
    response = httpx.post(
        f"{registry.url}/apps/JSON-SERVICE", json=json_instance("JSON-SERVICE", 9303)
    )
    assert response.status_code == 204
    response = httpx.post(
        f"{registry.url}/apps/XML-SERVICE",
        content=XML_INSTANCE,
        headers={"Content-Type": "application/xml"},
    )
    assert response.status_code == 204

    body = httpx.get(f"{registry.url}/apps", headers=JSON).json()["applications"]
    assert body["apps__hashcode"] == "UP_2_"
    assert int(body["versions__delta"]) >= 2
    by_app = {a["name"]: a["instance"] for a in body["application"]}
    assert set(by_app) == {"JSON-SERVICE", "XML-SERVICE"}
    [json_one] = by_app["JSON-SERVICE"]
    assert json_one["port"] == {"$": 9303, "@enabled": "true"}
    assert json_one["metadata"] == {"version": "1.2.3"}
    assert json_one["leaseInfo"]["durationInSecs"] == 90
    assert json_one["leaseInfo"]["registrationTimestamp"] > 0
    assert json_one["actionType"] == "ADDED"
    [xml_one] = by_app["XML-SERVICE"]
    assert xml_one["metadata"] == {"zone": "local"}
    assert xml_one["port"] == {"$": 9302, "@enabled": "true"}

    xml = ET.fromstring(httpx.get(f"{registry.url}/apps").content)
    assert xml.tag == "applications"
    assert xml.findtext("apps__hashcode") == "UP_2_"
    ports = {i.findtext("instanceId"): i.find("port") for i in xml.iter("instance")}
    assert ports["127.0.0.1:json-service:9303"].text == "9303"  # type: ignore[union-attr]
    assert ports["127.0.0.1:json-service:9303"].get("enabled") == "true"  # type: ignore[union-attr]

    one = httpx.get(f"{registry.url}/instances/127.0.0.1:xml-service:9302", headers=JSON)
    assert one.json()["instance"]["app"] == "XML-SERVICE"
    by_vip = asyncio.run(eureka_basic.get_vip(registry.url, "json-service"))
    assert [a.name for a in by_vip.applications] == ["JSON-SERVICE"]

    metadata = httpx.put(
        f"{registry.url}/apps/JSON-SERVICE/127.0.0.1:json-service:9303/metadata",
        params={"team": "search"},
    )
    assert metadata.status_code == 200
    app = registry.app("JSON-SERVICE")
    assert app is not None
    assert app["instance"][0]["metadata"] == {"version": "1.2.3", "team": "search"}  # type: ignore[index]


def test_bad_registrations_get_clear_errors(registry: RegistryProcess) -> None:
    missing_host = json_instance("BAD-SERVICE", 9304)
    del missing_host["instance"]["hostName"]  # type: ignore[attr-defined]
    response = httpx.post(f"{registry.url}/apps/BAD-SERVICE", json=missing_host)
    assert response.status_code == 400
    assert "hostName" in response.json()["detail"]

    response = httpx.post(f"{registry.url}/apps/OTHER", json=json_instance("BAD-SERVICE", 9304))
    assert response.status_code == 400
    assert "mismatched app name" in response.json()["detail"]

    response = httpx.post(
        f"{registry.url}/apps/XML-SERVICE",
        content="<instance><hostName>",
        headers={"Content-Type": "application/xml"},
    )
    assert response.status_code == 400
    assert "malformed XML" in response.json()["detail"]

    renew = httpx.put(f"{registry.url}/apps/NOPE/127.0.0.1:nope:1")
    assert renew.status_code == 404  # tells a client to register again
    assert metric_value(registry.port, "tweetpipe_registry_rejected_total") == 3
    assert (
        httpx.get(f"{registry.url}/apps", headers=JSON).json()["applications"]["application"] == []
    )


def test_status_override_takes_an_instance_out_of_rotation(registry: RegistryProcess) -> None:
    async def scenario() -> None:
        instance = client_instance("ORDERS", 9305)
        await eureka_basic.register(registry.url, instance)
        discovery = Discovery(registry.url, cache_s=0)
        assert await discovery.urls("orders") == ["http://127.0.0.1:9305"]

        await eureka_basic.status_update(
            registry.url, "ORDERS", instance.instanceId, instance.lastDirtyTimestamp
        )  # OUT_OF_SERVICE
        assert await discovery.urls("ORDERS") == []
        # neither renewals nor a fresh registration claiming UP lift an override
        await eureka_basic.send_heartbeat(
            registry.url, "ORDERS", instance.instanceId, instance.lastDirtyTimestamp
        )
        await eureka_basic.register(registry.url, instance)
        app = await eureka_basic.get_application(registry.url, "ORDERS")
        assert [(i.status, i.overriddenstatus) for i in app.instances] == [
            ("OUT_OF_SERVICE", "OUT_OF_SERVICE")
        ]

        # removing it leaves the status UNKNOWN: the next renewal fails, the client re-registers
        await eureka_basic.delete_status_override(
            registry.url, "ORDERS", instance.instanceId, instance.lastDirtyTimestamp
        )
        with pytest.raises(HTTPError) as renewal:
            await eureka_basic.send_heartbeat(
                registry.url, "ORDERS", instance.instanceId, instance.lastDirtyTimestamp
            )
        assert renewal.value.code == 404
        await eureka_basic.register(registry.url, instance)
        assert await discovery.urls("ORDERS") == ["http://127.0.0.1:9305"]
        await discovery.aclose()

    asyncio.run(scenario())


def test_expired_leases_are_evicted_and_renewed_ones_stay(registry: RegistryProcess) -> None:
    asyncio.run(eureka_basic.register(registry.url, client_instance("SHORT", 9306, duration_s=1)))
    kept = Registration(
        registry.url,
        instance_spec(
            ServiceSettings(
                eureka=EurekaSettings(
                    server_url=registry.url, renewal_interval_s=1, lease_duration_s=2
                )
            ),
            "RENEWED",
            9307,
        ),
    ).start()
    try:
        assert kept.wait_registered(10)
        wait_until(lambda: registry.app("SHORT") is None)
        assert metric_value(registry.port, "tweetpipe_registry_evictions_total") == 1
        # the renewing instance outlives several of its own lease durations
        renewals = metric_value(registry.port, "tweetpipe_registry_renewals_total")
        wait_until(
            lambda: metric_value(registry.port, "tweetpipe_registry_renewals_total") >= renewals + 3
        )
        assert registry.app("RENEWED") is not None
        assert metric_value(registry.port, "tweetpipe_registry_evictions_total") == 1
        delta = httpx.get(f"{registry.url}/apps/delta", headers=JSON).json()["applications"]
        actions = {i["app"]: i["actionType"] for a in delta["application"] for i in a["instance"]}
        assert actions == {"SHORT": "DELETED", "RENEWED": "ADDED"}
    finally:
        kept.stop()
    assert registry.app("RENEWED") is None


def test_registration_comes_back_after_a_registry_restart(tmp_path: Path) -> None:
    port = free_port()
    settings = ServiceSettings(
        eureka=EurekaSettings(server_url=f"http://127.0.0.1:{port}/eureka", renewal_interval_s=1)
    )
    registration = Registration(
        settings.eureka.server_url or "", instance_spec(settings, "PATIENT", 9308)
    ).start()
    try:
        assert not registration.wait_registered(1.5)  # nothing listening yet: retries quietly
        with RegistryProcess(tmp_path / "first.log", port=port) as first:
            wait_until(lambda: first.app("PATIENT") is not None)
        with RegistryProcess(tmp_path / "second.log", port=port) as second:
            # the new registry answers renewals with 404; the instance registers again
            wait_until(lambda: second.app("PATIENT") is not None)
    finally:
        registration.stop()


def test_a_service_registers_and_deregisters_on_sigterm(
    registry: RegistryProcess, broker: TansuBroker, tmp_path: Path
) -> None:
    port = free_port()
    service = ServiceProcess(
        "analytics_service",
        {
            "KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "DATA_DIR": str(tmp_path / "data"),
            "ADMIN__PORT": str(port),
            "EUREKA__SERVER_URL": registry.url,
            "EUREKA__RENEWAL_INTERVAL_S": "1",
        },
        tmp_path / "analytics.log",
    ).start()
    try:
        service.wait_healthy(port)
        wait_until(lambda: registry.app("ANALYTICS-SERVICE") is not None)
        app = registry.app("ANALYTICS-SERVICE")
        assert app is not None
        [instance] = app["instance"]  # type: ignore[misc]
        assert instance["instanceId"] == f"127.0.0.1:analytics-service:{port}"
        assert instance["statusPageUrl"] == f"http://127.0.0.1:{port}/docs"
        assert instance["healthCheckUrl"] == f"http://127.0.0.1:{port}/health"
        assert instance["metadata"]["profile"] == "local"
        assert instance["metadata"]["version"]
        discovery = Discovery(registry.url, cache_s=0)
        assert asyncio.run(discovery.urls("analytics-service")) == [f"http://127.0.0.1:{port}"]
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200

        assert service.terminate() == 0
        assert registry.app("ANALYTICS-SERVICE") is None
        assert metric_value(registry.port, "tweetpipe_registry_cancels_total") == 1
        assert metric_value(registry.port, "tweetpipe_registry_evictions_total") == 0
    finally:
        service.kill()
