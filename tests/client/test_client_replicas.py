"""Addresses of several replicas: one gRPC target, balanced round-robin with health checks."""

from __future__ import annotations

import json

import pytest

from thoughtbank.cli_common import server_address
from thoughtbank.retriever.base_client import ConnectionSettings, channel_target


def test_a_server_list_becomes_one_target_of_addresses() -> None:
    assert channel_target("127.0.0.1:1,localhost:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert channel_target("[::1]:5,[::1]:6") == "ipv6:[::1]:5,[::1]:6"
    assert channel_target("dns:///replicas.internal:50051") == "dns:///replicas.internal:50051"
    assert channel_target("127.0.0.1:1") == "127.0.0.1:1"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:1,[::1]:2", "mixes IPv4 and IPv6"),
        ("127.0.0.1:1,nohostport", "is not host:port"),
        ("127.0.0.1:1,no-such-host.invalid:2", "cannot resolve"),
    ],
)
def test_a_bad_server_list_says_which_entry(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        channel_target(address)


@pytest.mark.parametrize("address", ["a:1,b:2", "dns:///name:50051"])
def test_replicas_are_balanced_round_robin_with_health_checks(address: str) -> None:
    settings = ConnectionSettings(address)
    config = json.loads(dict(settings.options())["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": "thoughtbank.v1.ThoughtTemplateService"}
    assert config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == [
        "UNAVAILABLE",
        "CANCELLED",
    ]
    single = json.loads(dict(ConnectionSettings("a:1").options())["grpc.service_config"])
    assert "loadBalancingConfig" not in single


def test_the_cli_takes_server_lists_and_dns_targets() -> None:
    for address in ("h1:1,h2:2", "dns:///name:50051", "unix:/tmp/s"):
        assert server_address(address) == address
