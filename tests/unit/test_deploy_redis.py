"""The deployment files run the API as several replicas over one Redis (issue #28); the stack
test itself (deploy/test-stack.sh) runs them in Docker."""

from __future__ import annotations

from pathlib import Path

import yaml

from featurestore.online import online_store_type

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_pinned_redis_and_two_api_replicas_serving_from_it():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    image = services["redis"]["image"]
    assert image.startswith("redis:") and image.split(":")[1][0].isdigit()  # a pinned version
    replicas = [s for s in services.values()
                if s.get("command", [])[:2] == ["featurestore", "serve"]]
    assert len(replicas) >= 2
    ports = {p for s in replicas for p in s["ports"]}
    assert len(ports) == len(replicas)  # each replica reachable on its own port
    for service in replicas + [services["daily"]]:
        url = service["environment"]["FEATURESTORE_ONLINE_STORE"]
        assert "redis://redis:6379" in url and online_store_type(url.split("-", 1)[1].strip(
            "}"))[0] == "redis"
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
    override = yaml.safe_load((ROOT / "deploy" / "compose.moto.yml").read_text())
    assert override["services"]["redis"]["build"]["target"] == "redis"
    assert "AS redis" in (ROOT / "deploy" / "Dockerfile").read_text()


def test_k8s_api_has_replicas_and_an_optional_redis():
    api = next(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "api.yaml").read_text()))
    assert api["spec"]["replicas"] > 1
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["FEATURESTORE_ONLINE_STORE"]["valueFrom"]["secretKeyRef"]
    assert ref["optional"] is True and ref["name"] == "featurestore-redis"
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "redis.yaml").read_text()))
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert online_store_type(secret["stringData"]["url"])[0] == "redis"
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"].startswith("redis:7")
