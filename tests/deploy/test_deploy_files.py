"""The files in deploy/ against the code they run: variable names, commands, ports, probes and the broker topology."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from services.cli import service_cmd
from services.gateway.routes.health import health
from services.runtime.bus.rabbitmq import (
    DEFAULT_QUEUES,
    RabbitMqBus,
    commands_exchange,
    dead_letter_exchange,
    dead_letter_queue,
    events_exchange,
    work_queue,
)
from services.runtime.settings import _ENV
from tests.brokers import AMQP_URL

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NAMESPACE = "adagent"
# Read with os.environ directly rather than through Settings (each is checked against services/ below).
EXTRA_VARS = (
    "ADAGENT_HOME",
    "ADAGENT_JWT_SECRET",
    "ADAGENT_SIGNING_KEY",
    "ADAGENT_WEBHOOK_DELAYS",
    "ADAGENT_LOG_LEVEL",
    "ADAGENT_TOKEN",
)
KNOWN_VARS = frozenset(_ENV.values()) | frozenset(EXTRA_VARS)
VAR = re.compile(r"\bADAGENT_[A-Z0-9_]*[A-Z0-9]\b")


def _text_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _k8s_docs() -> list[dict[str, Any]]:
    manifests = sorted(p for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
    return [doc for path in manifests for doc in _yaml_docs(path)]


def _k8s_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in _k8s_docs():
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                yield doc["metadata"]["name"], container


def _adagent_compose_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in _compose()["services"].items() if str(svc.get("image", "")).startswith("adagent")
    }


def _cli() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adagent", exit_on_error=False)
    service_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    try:
        return _cli().parse_args(argv)
    except (SystemExit, argparse.ArgumentError) as exc:
        raise AssertionError(f"`adagent {' '.join(argv)}` is not a valid command line") from exc


def _commands() -> dict[str, list[str]]:
    """Every command line an AdAgent container runs (after the image's `adagent` entrypoint)."""
    commands = {f"compose:{name}": svc["command"] for name, svc in _adagent_compose_services().items()}
    for deployment, container in _k8s_containers():
        assert "command" not in container, f"{deployment} overrides the image's `adagent` entrypoint"
        commands[f"k8s:{deployment}"] = container["args"]
    cmd = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert cmd is not None
    commands["Dockerfile CMD"] = json.loads(cmd.group(1))
    return commands


def _gateway_port() -> int:
    return int(_parse(["service", "gateway"]).port)


def _generator() -> ModuleType:
    path = DEPLOY / "rabbitmq" / "generate_definitions.py"
    spec = importlib.util.spec_from_file_location("adagent_generate_definitions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _definitions() -> dict[str, Any]:
    return json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())


# -- files parse --------------------------------------------------------------------------------------------------


def test_every_yaml_and_json_file_parses() -> None:
    files = [p for p in _text_files() if p.suffix in {".yaml", ".yml", ".json"}]
    assert len(files) >= 10
    for path in files:
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            assert _yaml_docs(path), f"{path} is empty"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    kinds = [doc["kind"] for doc in _k8s_docs()]
    for kind in ("Secret", "ConfigMap", "PersistentVolumeClaim", "Service", "ScaledObject"):
        assert kind in kinds


# -- environment variables ----------------------------------------------------------------------------------------


def test_every_extra_variable_is_read_by_the_code() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "services").rglob("*.py"))
    for var in EXTRA_VARS:
        assert f'"{var}"' in sources, f"{var} is not read anywhere in services/"


def test_every_variable_named_in_deploy_exists_in_the_code() -> None:
    named = {var for path in _text_files() for var in VAR.findall(path.read_text())}
    assert named, "deploy/ names no ADAGENT_* variable"
    assert named <= KNOWN_VARS, f"unknown to the code: {sorted(named - KNOWN_VARS)}"


def test_containers_get_the_settings_distributed_mode_needs() -> None:
    required = {"ADAGENT_BUS", "ADAGENT_AMQP_URL", "ADAGENT_STORE", "ADAGENT_DATABASE_URL", "ADAGENT_HOME"}
    required |= {"ADAGENT_JWT_SECRET", "ADAGENT_SIGNING_KEY", "ADAGENT_PUBLIC_URL"}
    for name, svc in _adagent_compose_services().items():
        env = svc["environment"]
        assert required <= set(env), f"compose:{name} misses {sorted(required - set(env))}"
        assert env["ADAGENT_BUS"] == "rabbitmq" and env["ADAGENT_STORE"] == "postgres"
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _k8s_docs()}
    config = docs["ConfigMap", "adagent-config"]["data"]
    secret = docs["Secret", "adagent-secrets"]["stringData"]
    assert required <= set(config) | set(secret)
    assert {"ADAGENT_JWT_SECRET", "ADAGENT_SIGNING_KEY", "ADAGENT_AMQP_URL", "ADAGENT_DATABASE_URL"} <= set(secret)
    assert config["ADAGENT_BUS"] == "rabbitmq" and config["ADAGENT_STORE"] == "postgres"
    for deployment, container in _k8s_containers():
        refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
        assert refs == {"adagent-config", "adagent-secrets"}, deployment


# -- commands, ports, probes --------------------------------------------------------------------------------------


def test_every_container_runs_a_real_service_with_real_flags() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["adagent"\]$', dockerfile, re.MULTILINE)
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    ran: dict[str, set[str]] = {"compose": set(), "k8s": set()}
    for where, argv in _commands().items():
        assert argv[:1] == ["service"], f"{where}: {argv}"
        args = _parse(argv)
        assert args.name in service_cmd.SERVICES
        if args.name == "gateway":
            assert args.host == "0.0.0.0", f"{where}: a gateway on 127.0.0.1 is unreachable from outside"
            assert args.port == _gateway_port()
        else:
            assert argv == ["service", args.name], f"{where}: --host/--port are for the gateway only"
        ran.setdefault(where.split(":")[0], set()).add(args.name)
    assert ran["compose"] == set(service_cmd.SERVICES)
    assert ran["k8s"] == set(service_cmd.SERVICES)


def test_gateway_port_and_probe_path_match_the_code() -> None:
    port = _gateway_port()
    (path,) = health.paths
    services = _compose()["services"]
    gateways = [name for name, svc in _adagent_compose_services().items() if "gateway" in svc["command"]]
    assert len(gateways) == 2
    for name in gateways:
        assert services[name]["expose"] == [str(port)]
        assert f"http://127.0.0.1:{port}{path}" in " ".join(services[name]["healthcheck"]["test"])
    upstreams = re.findall(r"^\s*server (\S+) ", (DEPLOY / "proxy" / "nginx.conf").read_text(), re.MULTILINE)
    assert upstreams == [f"{name}:{port}" for name in gateways]
    (gateway,) = [c for d, c in _k8s_containers() if c["args"][1] == "gateway"]
    assert [p["containerPort"] for p in gateway["ports"]] == [port]
    named = {p["name"] for p in gateway["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert gateway[probe]["httpGet"]["path"] == path
        assert gateway[probe]["httpGet"]["port"] in named | {port}
    (service,) = [d for d in _k8s_docs() if d["kind"] == "Service"]
    assert service["spec"]["ports"][0]["targetPort"] in named | {port}


def test_proxy_streams_sse_and_upgrades_websockets() -> None:
    nginx = (DEPLOY / "proxy" / "nginx.conf").read_text()
    for directive in (
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_read_timeout 1h;",
    ):
        assert directive in nginx


def test_health_checks_of_infrastructure_and_workers() -> None:
    services = _compose()["services"]
    assert services["rabbitmq"]["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["renderer"]["deploy"]["replicas"] >= 2
    for svc in _adagent_compose_services().values():
        assert "adagent-home:/data" in svc["volumes"]
        assert "healthcheck" in svc
    assert (
        "deploy/probes/amqp_connected.py /usr/local/bin/adagent-amqp-connected" in (DEPLOY / "Dockerfile").read_text()
    )
    for deployment, container in _k8s_containers():
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/data" in mounts, deployment
        if container["args"][1] != "gateway":
            assert container["livenessProbe"]["exec"]["command"] == ["adagent-amqp-connected"], deployment


def _probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("amqp_connected", DEPLOY / "probes" / "amqp_connected.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worker_probe_sees_an_established_broker_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = _probe()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    listening = "   0: 00000000:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10001 0 1\n"
    to_broker = "   1: 0100007F:A1B2 0100007F:1628 01 00000000:00000000 00:00000000 00000000 10001 0 2\n"
    table = tmp_path / "tcp"
    table.write_text(header + listening)
    monkeypatch.setenv("ADAGENT_AMQP_URL", "amqp://u:p@rabbitmq:5672/")
    assert probe.main([str(table)]) == 1
    table.write_text(header + listening + to_broker)
    assert probe.main([str(table)]) == 0
    monkeypatch.setenv("ADAGENT_AMQP_URL", "amqp://u:p@rabbitmq:5673/")
    assert probe.main([str(table)]) == 1
    assert probe.broker_port("amqps://h/") == 5671


def test_keda_scales_the_renderer_on_its_queue_length() -> None:
    (scaled,) = [d for d in _k8s_docs() if d["kind"] == "ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "adagent-renderer"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == work_queue(NAMESPACE, "renderer")
    assert trigger["metadata"]["mode"] == "QueueLength"
    (auth,) = [d for d in _k8s_docs() if d["kind"] == "TriggerAuthentication"]
    assert auth["metadata"]["name"] == trigger["authenticationRef"]["name"]
    assert auth["spec"]["secretTargetRef"][0]["key"] == "ADAGENT_AMQP_URL"
    (pvc,) = [d for d in _k8s_docs() if d["kind"] == "PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


# -- RabbitMQ definitions -----------------------------------------------------------------------------------------


def test_definitions_are_what_the_code_declares() -> None:
    """The committed file equals a fresh generation from the code (run the script after changing a consumer)."""
    generator = _generator()
    assert _definitions() == asyncio.run(generator.build(NAMESPACE, "/")), "run deploy/rabbitmq/generate_definitions.py"


def test_definitions_declare_the_documented_topology() -> None:
    definitions = _definitions()
    # The broker counts one delivery more than the bus: that one is spent giving up on a message that kills consumers
    limit = RabbitMqBus("amqp://unused/")._delivery_limit + 1
    exchanges = {e["name"]: e["type"] for e in definitions["exchanges"]}
    assert exchanges == {
        events_exchange(NAMESPACE): "topic",
        commands_exchange(NAMESPACE): "direct",
        dead_letter_exchange(NAMESPACE): "direct",
    }
    queues = {q["name"]: q for q in definitions["queues"]}
    expected = {work_queue(NAMESPACE, q) for q in DEFAULT_QUEUES} | {
        dead_letter_queue(NAMESPACE, q) for q in DEFAULT_QUEUES
    }
    assert set(queues) == expected
    assert all(q["durable"] and not q["auto_delete"] and q["vhost"] == "/" for q in queues.values())
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    for queue in DEFAULT_QUEUES:
        arguments = dict(queues[work_queue(NAMESPACE, queue)]["arguments"])
        assert arguments.pop("x-single-active-consumer", False) is (queue == "scheduler")
        assert arguments == {
            "x-queue-type": "quorum",
            "x-delivery-limit": limit,
            "x-dead-letter-exchange": dead_letter_exchange(NAMESPACE),
            "x-dead-letter-routing-key": queue,
        }
        assert queues[dead_letter_queue(NAMESPACE, queue)]["arguments"] == {"x-queue-type": "quorum"}
        assert (dead_letter_exchange(NAMESPACE), dead_letter_queue(NAMESPACE, queue), queue) in bindings
        assert any(d == work_queue(NAMESPACE, queue) for _, d, _ in bindings), f"{queue} has no binding"
    assert (commands_exchange(NAMESPACE), work_queue(NAMESPACE, "renderer"), "RenderClip") in bindings
    assert (events_exchange(NAMESPACE), work_queue(NAMESPACE, "prompter"), "JobStarted") in bindings


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}"
    return done.stdout


async def _noop(_: object) -> None:
    return None


@pytest.mark.rabbitmq
@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="rabbitmqctl is not installed")
async def test_definitions_import_into_a_real_broker_and_the_code_accepts_them() -> None:
    vhost = f"adagent-deploy-{uuid.uuid4().hex[:12]}"
    definitions = _definitions()
    for key in ("exchanges", "queues", "bindings"):
        for item in definitions[key]:
            item["vhost"] = vhost
    definitions["vhosts"] = [{"name": vhost}]
    user = AMQP_URL.split("://", 1)[1].split(":", 1)[0]
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        # rabbitmqctl may run as the broker's user (its wrapper `su`s when called by root): a readable file, then.
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir="/tmp") as copy:
            copy.write(json.dumps(definitions))
            copy.flush()
            os.chmod(copy.name, 0o644)
            _rabbitmqctl("import_definitions", copy.name)
        imported = json.loads(_rabbitmqctl("list_queues", "-p", vhost, "name", "--formatter", "json"))
        assert {q["name"] for q in imported} == {q["name"] for q in definitions["queues"]}

        # Every service's start-up declaration against the imported topology: a different argument anywhere would
        # close the channel with PRECONDITION_FAILED.
        consumers = await _generator().record_consumers(NAMESPACE)
        bus = RabbitMqBus(AMQP_URL.rstrip("/") + "/" + quote(vhost, safe=""), namespace=NAMESPACE)
        await bus.start()
        try:
            await bus.consume_commands("renderer", ["RenderClip"], _noop, concurrency=1)
            for queue, consumer in consumers.items():
                if consumer["exchange"] == events_exchange(NAMESPACE):
                    await bus.consume_events(
                        queue, consumer["keys"], _noop, concurrency=1, single_active=consumer["single_active"]
                    )
                elif queue != "renderer":
                    await bus.consume_commands(queue, consumer["keys"], _noop, concurrency=1)
        finally:
            await bus.close()

        # ... and it added no binding the file lacks: the shipped definitions are the whole topology.
        listed = json.loads(
            _rabbitmqctl(
                "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key", "--formatter", "json"
            )
        )
        live = {(b["source_name"], b["destination_name"], b["routing_key"]) for b in listed if b["source_name"]}
        assert live == {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    finally:
        _rabbitmqctl("delete_vhost", vhost)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
