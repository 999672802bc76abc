"""The chart values each stack role renders (its preflight, no cluster): schema-valid, and what helm makes of them.

The roles' preflight entry points run once per module through ansible-playbook (tests/integration/roles/
render-values.yml); the values are then validated against every values.schema.json of the real upstream
charts (../shared/fixtures/upstream/charts) and rendered with the real helm binary.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess

import jsonschema
import pytest
import yaml

import upstream_charts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHARTS = upstream_charts.charts_dir()
HELM = os.path.join(ROOT, ".tools", "bin", "helm")
PLAYBOOK = os.path.join(ROOT, "tests", "integration", "roles", "render-values.yml")
LOCAL_CHARTS = os.path.join(ROOT, "tests", "integration", "roles", "local-charts.yml")
MIRROR = "mirror.example.internal:5000"

# role values file -> (chart directory, namespace the role installs it in)
ROLE_CHARTS = {
    "gpu_operator": ("gpu-operator", "gpu-operator"),
    "dra_driver": ("dra-driver-nvidia-gpu", "dra-driver-nvidia-gpu"),
    "gateway_api": ("gateway-helm", "envoy-gateway-system"),
    "kueue": ("kueue", "kueue-system"),
    "prometheus": ("kube-prometheus-stack", "monitoring"),
    "prometheus_adapter": ("prometheus-adapter", "monitoring"),
    "dcgm_exporter": ("dcgm-exporter", "dcgm-exporter"),
    "kuberay": ("kuberay-operator", "kuberay-system"),
}
# The release names the roles use by default (objects are named after them).
RELEASES = {"gpu_operator": "gpu-operator", "dra_driver": "dra-driver-nvidia-gpu", "gateway_api": "envoy-gateway", "kueue": "kueue",
            "prometheus": "kube-prometheus-stack", "prometheus_adapter": "prometheus-adapter", "dcgm_exporter": "dcgm-exporter",
            "kuberay": "kuberay-operator"}


def render_role_values(out_dir, *extra_vars):
    """Run every role's preflight and return {values file name: values}."""
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), PLAYBOOK, "-e", "@" + LOCAL_CHARTS]
    for var in extra_vars:
        cmd += ["-e", var]
    env = dict(os.environ, VALUES_DIR=str(out_dir), ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return {name: json.loads((out_dir / (name + ".json")).read_text()) for name in ROLE_CHARTS}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render_role_values(tmp_path_factory.mktemp("values"))


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """Every role pointed at one mirror registry, the optional parts switched the other way."""
    registries = ["{0}_image_registry={1}".format(role, MIRROR)
                  for role in ("gpu_operator", "dra_driver", "gateway_api", "kueue", "prometheus", "dcgm_exporter", "kuberay")]
    return render_role_values(tmp_path_factory.mktemp("mirrored"), *registries, "dcgm_exporter_service_monitor=enabled",
                              "gpu_operator_dcgm_exporter_enabled=false", "prometheus_select_all_monitors=false")


def helm_template(name, values, *extra):
    chart, namespace = ROLE_CHARTS[name]
    proc = subprocess.run([HELM, "template", RELEASES[name], os.path.join(CHARTS, chart), "--namespace", namespace,
                           "--values", "-", *extra],
                          input=json.dumps(values), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def find(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert found, "no {0} {1} rendered".format(kind, name or "")
    return found[0]


def containers(doc):
    spec = doc["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def merged(base, override):
    """Helm's coalescing of values maps: override wins, maps merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def chart_values(chart_dir):
    with open(os.path.join(chart_dir, "values.yaml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def schema_checks(name, values):
    """(schema path, values helm validates against it) for the chart and each subchart that has a schema."""
    chart_dir = os.path.join(CHARTS, ROLE_CHARTS[name][0])
    parent = merged(chart_values(chart_dir), values)
    checks = []
    if os.path.exists(os.path.join(chart_dir, "values.schema.json")):
        checks.append((os.path.join(chart_dir, "values.schema.json"), parent))
    subcharts = os.path.join(chart_dir, "charts")
    for sub in sorted(os.listdir(subcharts)) if os.path.isdir(subcharts) else []:
        schema = os.path.join(subcharts, sub, "values.schema.json")
        if os.path.exists(schema):
            with open(os.path.join(subcharts, sub, "Chart.yaml"), encoding="utf-8") as handle:
                sub_name = yaml.safe_load(handle)["name"]
            sub_values = merged(chart_values(os.path.join(subcharts, sub)), parent.get(sub_name, {}))
            sub_values["global"] = merged(sub_values.get("global", {}), parent.get("global", {}))
            checks.append((schema, sub_values))
    return checks


def validate(schema_path, values):
    with open(schema_path, encoding="utf-8") as handle:
        schema = json.load(handle)
    jsonschema.validators.validator_for(schema)(schema).validate(values)


@pytest.mark.parametrize("variant", ["rendered", "mirrored"])
def test_values_pass_every_chart_schema(variant, request):
    values = request.getfixturevalue(variant)
    checked = []
    for name in ROLE_CHARTS:
        for schema_path, chart_vals in schema_checks(name, values[name]):
            validate(schema_path, chart_vals)
            checked.append(os.path.relpath(schema_path, CHARTS))
    # Of the pinned charts only node feature discovery (the GPU operator's subchart) ships a schema.
    assert checked == ["gpu-operator/charts/node-feature-discovery/values.schema.json"]


def test_schema_check_catches_a_wrong_value(rendered):
    values = merged(rendered["gpu_operator"], {"node-feature-discovery": {"image": {"pullPolicy": "Sometimes"}}})
    (schema_path, chart_vals), = schema_checks("gpu_operator", values)
    with pytest.raises(jsonschema.ValidationError, match="Sometimes"):
        validate(schema_path, chart_vals)


@pytest.mark.parametrize("name", sorted(ROLE_CHARTS))
def test_every_role_values_render_with_helm(rendered, mirrored, name):
    assert helm_template(name, rendered[name])
    assert helm_template(name, mirrored[name])


def all_images(node):
    """Every image reference in rendered objects: `image` strings, or for the ClusterPolicy's operand specs
    (`repository` + short `image` name) the repository."""
    if isinstance(node, dict):
        if isinstance(node.get("repository"), str) and isinstance(node.get("image"), str):
            if node["repository"]:
                yield node["repository"]
        elif isinstance(node.get("image"), str) and node["image"]:
            yield node["image"]
        for key, value in node.items():
            if not isinstance(value, str):
                yield from all_images(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_images(item)


@pytest.mark.parametrize("name", sorted(ROLE_CHARTS))
def test_registry_override_moves_every_image(mirrored, name):
    docs = helm_template(name, mirrored[name])
    images = list(all_images([d for d in docs if d["kind"] not in ("ConfigMap", "CustomResourceDefinition")]))
    assert images
    # The GPU operator's vGPU manager image has no upstream repository (customers build it; vars/main.yml).
    assert [i for i in images if not i.startswith(MIRROR + "/") and i != "vgpu-manager"] == []


def test_released_images_not_the_source_tree_defaults(rendered):
    """The fixture charts come from git tags, whose values point at staging or moving tags; the roles pin releases."""
    operator = find(helm_template("gpu_operator", rendered["gpu_operator"]), "Deployment", "gpu-operator")
    assert containers(operator)[0]["image"] == "nvcr.io/nvidia/gpu-operator:v26.7.0"
    kueue = find(helm_template("kueue", rendered["kueue"]), "Deployment", "kueue-controller-manager")
    assert [c["image"] for c in containers(kueue)] == ["registry.k8s.io/kueue/kueue:v0.19.2"]
    gateway = find(helm_template("gateway_api", rendered["gateway_api"]), "Deployment", "envoy-gateway")
    assert [c["image"] for c in containers(gateway)] == ["docker.io/envoyproxy/gateway:v1.9.0"]
    kuberay = find(helm_template("kuberay", rendered["kuberay"]), "Deployment", "kuberay-operator")
    assert [c["image"] for c in containers(kuberay)] == ["quay.io/kuberay/operator:v1.7.0"]


def test_gpu_operator_exporter_switch(rendered, mirrored):
    policy = find(helm_template("gpu_operator", rendered["gpu_operator"]), "ClusterPolicy")
    assert policy["spec"]["dcgmExporter"]["enabled"] is True
    assert policy["spec"]["validator"]["version"] == "v26.7.0"
    off = find(helm_template("gpu_operator", mirrored["gpu_operator"]), "ClusterPolicy")
    assert off["spec"]["dcgmExporter"]["enabled"] is False


def test_dra_driver_renders_gpu_allocation(rendered):
    """The chart refuses GPU allocation unless told the device plugin is handled (SOURCES.md note 3)."""
    docs = helm_template("dra_driver", rendered["dra_driver"])
    classes = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "DeviceClass")
    assert "gpu.nvidia.com" in classes and "mig.nvidia.com" in classes
    plugin = find(docs, "DaemonSet", "dra-driver-nvidia-gpu-kubelet-plugin")
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in plugin["spec"]["template"]["spec"]["tolerations"]


def test_gateway_chart_installs_no_gateway_api_crds(rendered):
    """Only the standard channel CRDs the role applies may exist; the chart's experimental bundle stays out."""
    docs = helm_template("gateway_api", rendered["gateway_api"], "--include-crds")
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"] == []
    assert [d["kind"] for d in docs if d["kind"].startswith("ValidatingAdmissionPolicy")] == []
    config = yaml.safe_load(find(docs, "ConfigMap", "envoy-gateway-config")["data"]["envoy-gateway.yaml"])
    assert config["gateway"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"


def test_kueue_manager_config_is_the_chart_default_plus_overrides(rendered, tmp_path):
    config = yaml.safe_load(rendered["kueue"]["managerConfig"]["controllerManagerConfigYaml"])
    chart_default = yaml.safe_load(chart_values(os.path.join(CHARTS, "kueue"))["managerConfig"]["controllerManagerConfigYaml"])
    assert config == chart_default
    custom = render_role_values(tmp_path, '{"kueue_manager_config": {"waitForPodsReady": {"timeout": "5m", "blockAdmission": true}}}')
    config = yaml.safe_load(custom["kueue"]["managerConfig"]["controllerManagerConfigYaml"])
    assert config["waitForPodsReady"] == {"timeout": "5m", "blockAdmission": True}
    assert config["integrations"] == chart_default["integrations"]


def test_dcgm_exporter_runs_on_tainted_gpu_nodes_only(rendered, mirrored):
    docs = helm_template("dcgm_exporter", rendered["dcgm_exporter"])
    spec = find(docs, "DaemonSet", "dcgm-exporter")["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {t["matchExpressions"][0]["key"] for t in terms} == {"nvidia.com/gpu.present", "feature.node.kubernetes.io/pci-10de.present"}
    # Preflight cannot know whether the ServiceMonitor CRD exists ("auto"), so it leaves the monitor out ...
    assert not [d for d in docs if d["kind"] == "ServiceMonitor"]
    # ... while "enabled" always renders it.
    assert find(helm_template("dcgm_exporter", mirrored["dcgm_exporter"]), "ServiceMonitor", "dcgm-exporter")


def test_prometheus_selects_every_monitor_and_records_gpu_pod_metrics(rendered, mirrored):
    docs = helm_template("prometheus", rendered["prometheus"])
    prom = find(docs, "Prometheus", "kube-prometheus-stack-prometheus")["spec"]
    # An empty selector selects everything; the chart default would select only release=<name>.
    assert prom["serviceMonitorSelector"] == {} and prom["podMonitorSelector"] == {} and prom["ruleSelector"] == {}
    narrow = find(helm_template("prometheus", mirrored["prometheus"]), "Prometheus")["spec"]
    assert narrow["serviceMonitorSelector"] == {"matchLabels": {"release": "kube-prometheus-stack"}}
    rules = [r for d in docs if d["kind"] == "PrometheusRule" for g in d["spec"]["groups"] for r in g["rules"] if "record" in r]
    gpu = {r["record"]: r["expr"] for r in rules if r["record"].startswith("pod_gpu_")}
    assert set(gpu) == {"pod_gpu_utilization", "pod_gpu_memory_used_mib"}
    assert '"pod", "$1", "exported_pod"' in gpu["pod_gpu_utilization"] and "DCGM_FI_DEV_GPU_UTIL{" in gpu["pod_gpu_utilization"]


def test_adapter_queries_the_stack_prometheus_and_serves_the_gpu_rules(rendered):
    stack_services = {d["metadata"]["name"] for d in helm_template("prometheus", rendered["prometheus"]) if d["kind"] == "Service"}
    docs = helm_template("prometheus_adapter", rendered["prometheus_adapter"])
    args = containers(find(docs, "Deployment", "prometheus-adapter"))[0]["args"]
    url = [a.split("=", 1)[1] for a in args if a.startswith("--prometheus-url=")][0]
    host = url.split("//", 1)[1].split(":", 1)[0]
    service, namespace = host.split(".")[:2]
    assert service in stack_services and namespace == "monitoring"
    config = yaml.safe_load(find(docs, "ConfigMap", "prometheus-adapter")["data"]["config.yaml"])
    gpu_rules = [r for r in config["rules"] if "pod_gpu_" in r["seriesQuery"]]
    assert len(gpu_rules) == 1
    assert gpu_rules[0]["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}


def run_preflight(role, *extra_vars):
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"ansible.builtin.include_role": {"name": "k8s_ai.conformance." + role, "tasks_from": "preflight"}}]}]
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "/dev/stdin", "-e", "@" + LOCAL_CHARTS]
    for var in extra_vars:
        cmd += ["-e", var]
    return subprocess.run(cmd, cwd=ROOT, input=yaml.safe_dump(play), capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")))


@pytest.mark.parametrize("role, extra, message", [
    ("kueue", "kueue_chart_version=latest", "must each name one exact release"),
    ("gpu_operator", "gpu_operator_version=^26.7", "must each name one exact release"),
    ("kuberay", "kuberay_chart_ref=/nonexistent/kuberay-operator", "neither an oci:// or http(s):// reference nor an existing local chart"),
    ("prometheus", "prometheus_wait_timeout=0", "must be positive"),
])
def test_preflight_refuses_with_a_message_naming_the_fix(role, extra, message):
    proc = run_preflight(role, extra)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("role", ["gpu_operator", "dra_driver", "gateway_api", "kueue", "prometheus", "dcgm_exporter", "kuberay"])
def test_every_default_is_documented_with_the_same_value(role):
    """meta/argument_specs.yml documents every variable of defaults/main.yml with the same default, for both
    entry points (ansible-core validates against it, people read it)."""
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        specs = yaml.safe_load(handle)["argument_specs"]
    for entry in ("main", "preflight"):
        options = specs[entry]["options"]
        assert sorted(options) == sorted(defaults), entry
        assert {name: spec.get("default") for name, spec in options.items()} == defaults, entry
        assert all(name.startswith(role + "_") for name in options)
