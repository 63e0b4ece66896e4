"""Route table parsing: the controller's JSON in, frozen values out, every bad field named."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from modelyard.core.errors import InvalidInput
from modelyard.gateway import DeploymentRoute, ReplicaRoute, RevisionRoute, RouteTable

EXAMPLE: dict[str, Any] = {
    "version": 3,
    "deployments": [
        {
            "name": "churn-api",
            "request_timeout_s": 60,
            "queue_limit": 100,
            "queue_timeout_s": 30,
            "shadow_queue_limit": 64,
            "revisions": [
                {
                    "revision": 1,
                    "weight": 90,
                    "shadow_percent": 0,
                    "replicas": [{"id": "r-abc", "host": "127.0.0.1", "port": 41234}],
                },
                {"revision": 2, "weight": 10, "shadow_percent": 12.5, "replicas": []},
            ],
        }
    ],
}


def test_example_parses_to_frozen_values() -> None:
    table = RouteTable.from_json(EXAMPLE)
    assert table.version == 3
    churn = table.deployments["churn-api"]
    assert churn == DeploymentRoute(
        name="churn-api",
        revisions=(
            RevisionRoute(1, 90, 0.0, (ReplicaRoute("r-abc", "127.0.0.1", 41234),)),
            RevisionRoute(2, 10, 12.5, ()),
        ),
        request_timeout_s=60.0,
        queue_limit=100,
        queue_timeout_s=30.0,
        shadow_queue_limit=64,
    )
    with pytest.raises(AttributeError):
        churn.queue_limit = 5  # type: ignore[misc]


def test_to_json_round_trips_through_json_text() -> None:
    table = RouteTable.from_json(EXAMPLE)
    again = RouteTable.from_json(json.loads(json.dumps(table.to_json())))
    assert again == table


def test_optional_fields_take_their_defaults() -> None:
    table = RouteTable.from_json(
        {
            "version": 0,
            "deployments": [
                {"name": "a", "revisions": [{"revision": 1, "weight": 100, "replicas": []}]}
            ],
        }
    )
    route = table.deployments["a"]
    assert (route.request_timeout_s, route.queue_limit, route.queue_timeout_s) == (60.0, 100, 30.0)
    assert route.shadow_queue_limit == 64
    assert route.revisions[0].shadow_percent == 0.0
    assert RouteTable.from_json({"version": 7}).deployments == {}


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(table: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = table
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(table: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = table
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


BAD = {
    "version-missing": (_delete("version"), "version"),
    "version-string": (_set("version", "3"), "version"),
    "version-negative": (_set("version", -1), "version"),
    "version-bool": (_set("version", True), "version"),
    "unknown-top": (_set("extra", 1), "extra"),
    "deployments-object": (_set("deployments", {}), "deployments"),
    "deployment-not-object": (_set("deployments.0", 5), "deployments[0]"),
    "name-missing": (_delete("deployments.0.name"), "deployments[0].name"),
    "name-slash": (_set("deployments.0.name", "a/b"), "deployments[0].name"),
    "name-dash": (_set("deployments.0.name", "-"), "deployments[0].name"),
    "name-empty": (_set("deployments.0.name", ""), "deployments[0].name"),
    "name-number": (_set("deployments.0.name", 5), "deployments[0].name"),
    "unknown-deployment-key": (_set("deployments.0.replicas", []), "deployments[0].replicas"),
    "timeout-zero": (
        _set("deployments.0.request_timeout_s", 0),
        "deployments[0].request_timeout_s",
    ),
    "timeout-text": (
        _set("deployments.0.request_timeout_s", "60"),
        "deployments[0].request_timeout_s",
    ),
    "queue-limit-negative": (_set("deployments.0.queue_limit", -1), "deployments[0].queue_limit"),
    "queue-limit-float": (_set("deployments.0.queue_limit", 1.5), "deployments[0].queue_limit"),
    "queue-timeout-negative": (
        _set("deployments.0.queue_timeout_s", -2),
        "deployments[0].queue_timeout_s",
    ),
    "shadow-limit-bool": (
        _set("deployments.0.shadow_queue_limit", False),
        "deployments[0].shadow_queue_limit",
    ),
    "revisions-missing": (_delete("deployments.0.revisions"), "deployments[0].revisions"),
    "revisions-empty": (_set("deployments.0.revisions", []), "deployments[0].revisions"),
    "revision-number-missing": (
        _delete("deployments.0.revisions.0.revision"),
        "deployments[0].revisions[0].revision",
    ),
    "revision-duplicate": (
        _set("deployments.0.revisions.1.revision", 1),
        "deployments[0].revisions[1].revision",
    ),
    "weight-over-100": (
        _set("deployments.0.revisions.0.weight", 101),
        "deployments[0].revisions[0].weight",
    ),
    "weight-negative": (
        _set("deployments.0.revisions.1.weight", -10),
        "deployments[0].revisions[1].weight",
    ),
    "weights-sum": (_set("deployments.0.revisions.0.weight", 80), "deployments[0].revisions"),
    "shadow-over-100": (
        _set("deployments.0.revisions.1.shadow_percent", 100.5),
        "deployments[0].revisions[1].shadow_percent",
    ),
    "shadow-nan": (
        _set("deployments.0.revisions.1.shadow_percent", float("nan")),
        "deployments[0].revisions[1].shadow_percent",
    ),
    "unknown-revision-key": (
        _set("deployments.0.revisions.0.replica", []),
        "deployments[0].revisions[0].replica",
    ),
    "replicas-object": (
        _set("deployments.0.revisions.0.replicas", {}),
        "deployments[0].revisions[0].replicas",
    ),
    "replica-id-empty": (
        _set("deployments.0.revisions.0.replicas.0.id", ""),
        "deployments[0].revisions[0].replicas[0].id",
    ),
    "replica-host-number": (
        _set("deployments.0.revisions.0.replicas.0.host", 127),
        "deployments[0].revisions[0].replicas[0].host",
    ),
    "replica-port-zero": (
        _set("deployments.0.revisions.0.replicas.0.port", 0),
        "deployments[0].revisions[0].replicas[0].port",
    ),
    "replica-port-too-big": (
        _set("deployments.0.revisions.0.replicas.0.port", 70000),
        "deployments[0].revisions[0].replicas[0].port",
    ),
    "replica-port-missing": (
        _delete("deployments.0.revisions.0.replicas.0.port"),
        "deployments[0].revisions[0].replicas[0].port",
    ),
    "replica-unknown-key": (
        _set("deployments.0.revisions.0.replicas.0.weight", 1),
        "deployments[0].revisions[0].replicas[0].weight",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_bad_field_is_named(case: str) -> None:
    mutate, field = BAD[case]
    table = copy.deepcopy(EXAMPLE)
    mutate(table)
    with pytest.raises(InvalidInput) as caught:
        RouteTable.from_json(table)
    assert str(caught.value).startswith(f"{field}:"), str(caught.value)


def test_duplicate_names_and_replica_ids_are_rejected() -> None:
    table = copy.deepcopy(EXAMPLE)
    table["deployments"].append(copy.deepcopy(table["deployments"][0]))
    with pytest.raises(InvalidInput, match=r"deployments\[1\]\.name"):
        RouteTable.from_json(table)
    table = copy.deepcopy(EXAMPLE)
    table["deployments"][0]["revisions"][1]["replicas"] = [
        {"id": "r-abc", "host": "127.0.0.1", "port": 1}
    ]
    with pytest.raises(InvalidInput, match=r"revisions\[1\]\.replicas\[0\]\.id"):
        RouteTable.from_json(table)


def test_a_non_object_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="route table"):
        RouteTable.from_json([1, 2])
