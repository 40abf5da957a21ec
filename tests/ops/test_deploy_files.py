"""Deployment files that cannot run here (no Docker engine, no cloud, no Kubernetes) are checked
for what would break them: Ray's own cluster schema, real settings names and values, matching
ports, the Serve application, and alert rules / dashboards that use only metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from trendflow.errors import all_error_classes
from trendflow.metrics import RUN_STATUSES, Metrics
from trendflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
RAY_WORKER_PORTS = range(10002, 20000)
REQUIRED_ALERTS = {
    "TrendflowHealthFailing", "TrendflowQueueTooLong", "TrendflowSuccessRateLow",
    "TrendflowOutOfMemoryFrequent", "TrendflowComponentSlow",
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _defined_metric_names() -> set[str]:
    """Every series name trendflow/metrics.py exposes (counters as *_total, histograms as
    *_bucket/_sum/_count), from a fresh registry."""
    names: set[str] = set()
    for family in Metrics(mirror_to_ray=False).registry.collect():
        match family.type:
            case "counter":
                names.add(family.name + "_total")
            case "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
            case _:
                names.add(family.name)
    return names


METRIC_RE = re.compile(r"\btrendflow_[a-z0-9_]+")
RECORDED_RE = re.compile(r"\btrendflow:[a-z0-9_:]+")


def _check_expr(expr: str, recorded: set[str]) -> list[str]:
    problems = []
    defined = _defined_metric_names()
    problems += [f"{n} is not defined in trendflow/metrics.py"
                 for n in METRIC_RE.findall(expr) if n not in defined]
    problems += [f"{n} is not a recording rule of alerts.yml"
                 for n in RECORDED_RE.findall(expr) if n not in recorded]
    if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
        problems.append(f"unbalanced brackets in {expr!r}")
    codes = {c.code for c in all_error_classes()}
    problems += [f"code {c!r} is not a stable error code"
                 for c in re.findall(r'code="([^"]+)"', expr) if c not in codes]
    for alternatives in re.findall(r'status=~?"([^"]+)"', expr):
        problems += [f"status {s!r} is not a run status"
                     for s in alternatives.split("|") if s not in RUN_STATUSES]
    return problems


def _recording_rules() -> set[str]:
    doc = _yaml(CLUSTER / "prometheus" / "alerts.yml")
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


# -- settings names in environment blocks --------------------------------------------------------

def _settings_env_problem(name: str) -> str | None:
    """None when ``name`` (TRENDFLOW_…) is a variable Settings reads."""
    rest = name.removeprefix("TRENDFLOW_").lower()
    if rest == "database_url":
        return None
    section, _, field = rest.partition("__")
    info = Settings.model_fields.get(section)
    if info is None:
        return f"{name}: Settings has no field {section!r}"
    if not field:
        return None
    model = info.annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"{name}: {section!r} is not a section"
    if field not in model.model_fields:
        return f"{name}: {model.__name__} has no field {field!r}"
    return None


_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} / ${VAR:?error} / ${VAR}, with a placeholder for set values."""
    def sub(m: re.Match[str]) -> str:
        return m.group(3) if m.group(2) == "-" else "placeholder"

    return _INTERPOLATION.sub(sub, value)


def _check_settings_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    names = [n for n in env if n.startswith("TRENDFLOW_")]
    assert names
    problems = [p for n in names if (p := _settings_env_problem(n))]
    assert problems == []
    for n in names:  # the values must also validate
        monkeypatch.setenv(n, _interpolate(str(env[n])))
    Settings()


# -- ray_cluster.yaml --------------------------------------------------------------------------

def test_ray_cluster_config_passes_rays_own_validation() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _yaml(ROOT / "ray_cluster.yaml")
    validate_config(prepare_config(config))  # raises on any schema breach

    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert head["resources"]["GPU"] == 0
    assert len(workers) == 1 and workers[0]["resources"]["GPU"] >= 1
    assert 0 <= workers[0]["min_workers"] <= workers[0]["max_workers"] <= config["max_workers"]

    head_cmds = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_cmds and "RAY_USE_TLS=1" in head_cmds
    assert "--dashboard-host=0.0.0.0" in head_cmds
    assert "serve_config.cluster.yaml" in head_cmds
    assert "RAY_AUTH_MODE=token" in " ".join(config["worker_start_ray_commands"])
    everything = json.dumps(config)
    ports = [int(p) for p in re.findall(r"-port=(\d+)", everything)]
    assert ports and not [p for p in ports if p in RAY_WORKER_PORTS]
    assert (ROOT / "cluster/certs/make-node-cert.sh").is_file()


def test_images_and_cluster_install_the_same_no_deps_packages_as_make() -> None:
    makefile = (ROOT / "Makefile").read_text()
    block = re.search(r"^NO_DEPS := (.*?)(?<!\\)\n", makefile, re.S | re.M)
    assert block
    expected = set(block.group(1).replace("\\\n", " ").split())
    for path in (CLUSTER / "docker" / "Dockerfile", ROOT / "ray_cluster.yaml"):
        text = path.read_text()
        found = set(re.findall(r"\b[a-z][a-z0-9-]*==[0-9][^\s\\]*", text))
        assert expected <= found, f"{path}: missing {sorted(expected - found)}"


# -- Serve application -------------------------------------------------------------------------

def test_every_serve_config_deploys_the_same_application() -> None:
    reference = _yaml(ROOT / "serve_config.yaml")["applications"]
    cluster = _yaml(CLUSTER / "serve_config.cluster.yaml")
    docs = list(yaml.safe_load_all((CLUSTER / "k8s" / "rayservice.yaml").read_text()))
    service = next(d for d in docs if d["kind"] == "RayService")
    k8s = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert cluster["applications"] == reference
    assert k8s["applications"] == reference
    for cfg in (cluster, k8s):
        assert cfg["http_options"] == {"host": "0.0.0.0", "port": 8080}


def _dataclass_fields(source: Path, cls: str) -> set[str]:
    """The annotated fields of ``cls`` in ``source``: the installed Ray's LLM config models
    import vLLM, which a CPU machine does not have, so their fields are read from the source."""
    import ast

    tree = ast.parse(source.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    return {n.target.id for n in node.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


def test_the_cluster_llm_deployment_parses_and_the_gateway_reaches_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray
    from ray.serve.schema import ServeDeploySchema

    config = _yaml(CLUSTER / "serve_llm.cluster.yaml")
    ServeDeploySchema.model_validate(config)  # Ray Serve's own schema for `serve deploy`
    apps = {a["name"]: a for a in config["applications"]}
    reference = _yaml(ROOT / "serve_config.yaml")["applications"]
    assert [apps["trendflow"]] == reference
    assert config["http_options"] == _yaml(CLUSTER / "serve_config.cluster.yaml")["http_options"]

    llm = apps["llm"]
    assert llm["import_path"] == "ray.serve.llm:build_openai_app"
    assert llm["route_prefix"] not in {a["route_prefix"] for a in reference}
    source = Path(ray.__file__).parent / "llm/_internal/serve/core/configs/llm_config.py"
    llm_fields = _dataclass_fields(source, "LLMConfig")
    loading_fields = _dataclass_fields(source, "ModelLoadingConfig")
    (model,) = llm["args"]["llm_configs"]
    assert set(model) <= llm_fields, set(model) - llm_fields
    assert set(model["model_loading_config"]) <= loading_fields
    scaling = model["deployment_config"]["autoscaling_config"]
    assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"]
    assert 0 < model["engine_kwargs"]["gpu_memory_utilization"] < 1

    # The gateway settings of cluster/llm.env are real settings, and reach exactly that app.
    env = dict(line.split("=", 1) for line in (CLUSTER / "llm.env").read_text().splitlines()
               if line and not line.startswith("#"))
    _check_settings_env(env, monkeypatch)
    settings = Settings()
    port = config["http_options"]["port"]
    assert settings.llm.base_url == f"http://ray-head:{port}{llm['route_prefix']}/v1"
    assert settings.llm.model_name == model["model_loading_config"]["model_id"]
    assert model["engine_kwargs"]["max_model_len"] >= settings.llm.context_tokens
    # The GPU workers of ray_cluster.yaml are where the engine's GPU comes from.
    types = _yaml(ROOT / "ray_cluster.yaml")["available_node_types"]
    assert any(t["resources"].get("GPU", 0) >= 1 for t in types.values())


# -- docker-compose ----------------------------------------------------------------------------

def _compose() -> dict[str, Any]:
    return _yaml(CLUSTER / "docker-compose.yml")


def test_compose_environment_uses_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _compose()["services"]
    for name in ("ray-head", "ray-gpu-worker"):
        _check_settings_env(services[name]["environment"], monkeypatch)
    for name, svc in services.items():
        env = svc.get("environment") or {}
        assert not [k for k in env if k.startswith("TRENDFLOW_") and _settings_env_problem(k)], name


def test_compose_ports_agree() -> None:
    compose = _compose()
    services = compose["services"]
    env = services["ray-head"]["environment"]
    triton_cmd = " ".join(services["triton"]["command"])
    triton_ports = {k: re.search(rf"--{k}-port=(\d+)", triton_cmd).group(1)  # type: ignore[union-attr]
                    for k in ("http", "grpc", "metrics")}
    assert env["TRENDFLOW_TRITON__URL"] == f"triton:{triton_ports['grpc']}"
    for kind, port in triton_ports.items():
        assert env[f"TRENDFLOW_TRITON__{kind.upper()}_PORT"] == port
    assert "--model-config-name=gpu" in triton_cmd and "--grpc-use-ssl-mutual=true" in triton_cmd

    published = {p.split(":")[-1] for p in services["ray-head"]["ports"]}
    serve_port = str(_yaml(CLUSTER / "serve_config.cluster.yaml")["http_options"]["port"])
    assert {serve_port, env["TRENDFLOW_API__DASHBOARD_PORT"]} <= published
    assert env["TRENDFLOW_API__PORT"] == serve_port

    # Every mounted host path exists (certs/out is generated by make-dev-ca.sh).
    for svc in services.values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".") and "certs/out" not in source:
                assert (CLUSTER / source).exists(), source

    # Prometheus scrapes services that exist, on ports they listen on.
    listening = {
        "ray-head": {"8080", "8090", "8265"}, "ray-gpu-worker": {"8090"},
        "triton": set(triton_ports.values()), "blackbox": {"9115"},
    }
    prom = _yaml(CLUSTER / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert {"ray", "trendflow-api", "triton", "trendflow-health"} <= set(jobs)
    for job in jobs.values():
        for sd in job.get("dns_sd_configs", []):
            for host in sd["names"]:
                assert str(sd["port"]) in listening[host]
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = re.sub(r"^https?://", "", target).split("/")[0].split(":")
                assert host in services and port in listening[host], target
    assert jobs["triton"]["static_configs"][0]["targets"] == [f"triton:{triton_ports['metrics']}"]
    mounted = " ".join(services["prometheus"]["volumes"])
    for rule_file in prom["rule_files"]:
        assert rule_file in mounted


def test_ray_metric_names_are_mapped_to_the_metrics_module_names() -> None:
    prom = _yaml(CLUSTER / "prometheus" / "prometheus.yml")
    ray_job = next(j for j in prom["scrape_configs"] if j["job_name"] == "ray")
    (relabel,) = ray_job["metric_relabel_configs"]
    pattern = re.compile(relabel["regex"])
    replacement = relabel["replacement"].replace("$1", r"\1")
    for name in _defined_metric_names():
        exported = f"ray_{name}"  # Ray's metrics agent prefixes every metric with its namespace
        assert pattern.fullmatch(exported)
        assert pattern.sub(replacement, exported) == name
    assert not pattern.fullmatch("ray_node_cpu_utilization")


def test_k8s_environment_uses_real_settings() -> None:
    docs = list(yaml.safe_load_all((CLUSTER / "k8s" / "rayservice.yaml").read_text()))
    service = next(d for d in docs if d["kind"] == "RayService")
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["authOptions"]["mode"] == "token"
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    names = [e["name"] for p in pods for c in p["template"]["spec"]["containers"]
             for e in c.get("env", [])]
    assert "RAY_USE_TLS" in names
    assert [p for n in names if n.startswith("TRENDFLOW_") and (p := _settings_env_problem(n))] \
        == []


# -- alert rules and dashboard ----------------------------------------------------------------

def test_alert_rules_cover_the_design_and_use_only_defined_metrics() -> None:
    doc = _yaml(CLUSTER / "prometheus" / "alerts.yml")
    recorded = _recording_rules()
    rules = [r for g in doc["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert set(alerts) >= REQUIRED_ALERTS
    problems = [p for r in rules for p in _check_expr(str(r["expr"]), recorded)]
    assert problems == []
    assert alerts["TrendflowHealthFailing"]["for"] == "2m"
    assert "> 100" in alerts["TrendflowQueueTooLong"]["expr"]
    assert "< 0.8" in alerts["TrendflowSuccessRateLow"]["expr"]
    assert "> 0.1" in alerts["TrendflowOutOfMemoryFrequent"]["expr"]
    assert "> 2 *" in alerts["TrendflowComponentSlow"]["expr"]
    # Every TrendFlow metric is read from the Ray job, where all processes report.
    for r in rules:
        for selector in re.findall(r"trendflow_[a-z_]+\{([^}]*)\}", str(r["expr"])):
            assert 'job="ray"' in selector, r


def test_the_checks_catch_an_unknown_metric() -> None:
    problems = _check_expr('rate(trendflow_runs_failed_total{code="no_such_code"}[5m]) '
                           '/ trendflow:nope', _recording_rules())
    assert len(problems) == 3


def test_dashboard_reads_only_defined_metrics() -> None:
    dash = json.loads((CLUSTER / "grafana" / "trendflow-dashboard.json").read_text())
    provisioned = _yaml(CLUSTER / "grafana/provisioning/datasources/prometheus.yml")
    uid = provisioned["datasources"][0]["uid"]
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs and all(p["datasource"]["uid"] == uid for p in dash["panels"])
    problems = [p for e in exprs for p in _check_expr(e, _recording_rules())]
    assert problems == []
    shown = {n for e in exprs for n in METRIC_RE.findall(e)}
    # Every metric of the module appears on the dashboard.
    assert {re.sub(r"_(bucket|sum|count)$", "", n) for n in _defined_metric_names()} <= {
        re.sub(r"_(bucket|sum|count)$", "", n) for n in shown}
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


# -- node certificates --------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_node_certificate_names_the_node_and_chains_to_the_ca(tmp_path: Path) -> None:
    subprocess.run(["bash", str(CLUSTER / "certs/make-dev-ca.sh"), str(tmp_path / "ca")],
                   check=True, capture_output=True)
    subprocess.run(["bash", str(CLUSTER / "certs/make-node-cert.sh"), str(tmp_path / "ca"),
                    str(tmp_path / "node"), "10.9.8.7"], check=True, capture_output=True)
    crt = tmp_path / "node" / "node.crt"
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca/ca.crt"),
                             str(crt)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "IP Address:10.9.8.7" in text and "IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text and "TLS Web Client Authentication" in text
    assert (tmp_path / "node" / "node.key").stat().st_mode & 0o077 == 0


def test_cluster_deployments_serve_through_the_proxy() -> None:
    """Multi-node deployments front every node's replicas with Serve's proxy: each sets direct
    ingress off, or ``build_app`` refuses the deployment (``config_error``)."""
    compose = _yaml(CLUSTER / "docker-compose.yml")
    assert compose["x-trendflow-env"]["TRENDFLOW_API__SERVE_DIRECT_INGRESS"] == "false"
    rayservice = (CLUSTER / "k8s" / "rayservice.yaml").read_text()
    assert '{name: TRENDFLOW_API__SERVE_DIRECT_INGRESS, value: "false"}' in rayservice
    readme = (CLUSTER / "README.md").read_text()
    assert "TRENDFLOW_API__SERVE_DIRECT_INGRESS=false" in readme
    assert "TRENDFLOW_API__SERVE_DIRECT_INGRESS=false" in (ROOT / "ray_cluster.yaml").read_text()
    assert Settings(api={"serve_direct_ingress": "false"}).api.serve_direct_ingress is False
