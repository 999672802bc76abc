"""resource.Quantity fields: the simulated API serialises them in canonical form, as kube-apiserver does.

The expected strings are apimachinery's own test cases (k8s.io/apimachinery/pkg/api/resource/
quantity_test.go), so a mismatch means the simulator and the real library disagree.
"""
from __future__ import annotations

import pytest
from kubernetes import client

from conftest import api_client
from simcluster import protobuf
from simcluster.quantity import FORMAT_ERROR, QUANTITY_FIELDS, SUFFIX_ERROR, QuantityError, canonical

# TestQuantityParseEmit: ParseQuantity(in).String() == out, and the same for "-" + in
PARSE_EMIT = [("1Ki", "1Ki"), ("1Mi", "1Mi"), ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1000M", "1G"),
              (".001Ki", "1024m"), (".000001Ki", "1024u"), (".000000001Ki", "1024n"), (".000000000001Ki", "2n")]
# TestQuantityString: (canonical, alternate) -- the canonical string parses back unchanged, and the
# alternate spelling is re-emitted as the canonical one
STRING_ALTERNATES = [("1Gi", "1024Mi"), ("300Mi", "307200Ki"), ("6Ki", None), ("1001Gi", "1025024Mi"),
                     ("1Ti", "1024Gi"), ("5", "5000m"), ("500m", "0.5"), ("1G", "1000M"), ("1G", "0.001T"),
                     ("1m", "1000u"), ("80m", None), ("1080m", "1.08"), ("1080m", "1080000000n"), ("300M", None),
                     ("1T", None), ("1234567M", None), ("1234567m", None), ("3k", None), ("1025", None),
                     ("0", None), ("1e9", ".001e12"), ("1e-3", "0.001e0"), ("1e-9", "1000e-12"), ("80e-3", None),
                     ("300e6", None), ("1e12", None), ("1e3", None), ("3e3", None), ("0", "00"), ("1n", None),
                     ("80n", None), ("1080n", None), ("1u", None), ("80u", None), ("1080u", None)]
# TestJSONWhitespace (quoted and bare JSON values) and TestNewSet (an int64 1000 in DecimalSI is "1k")
JSON_VALUES = [(" 1", "1"), ("1 ", "1"), (1, "1"), (10, "10"), (-1, "-1"), (1000, "1k"), (1234000, "1234k")]
# TestQuantityParse's "invalid" table
INVALID = ["1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-"]


@pytest.mark.parametrize("text, expected", PARSE_EMIT)
def test_parse_emit_cases_of_apimachinery(text, expected):
    """quantity_test.go TestQuantityParseEmit: re-emitted canonical forms, negated ones included."""
    assert canonical(text) == expected
    assert canonical("-" + text) == "-" + expected


@pytest.mark.parametrize("expected, alternate", STRING_ALTERNATES)
def test_string_cases_of_apimachinery(expected, alternate):
    """quantity_test.go TestQuantityString: a canonical string is served as written; another spelling of
    the same value comes back canonical."""
    assert canonical(expected) == expected
    if alternate is not None:
        assert canonical(alternate) == expected


@pytest.mark.parametrize("value, expected", JSON_VALUES)
def test_json_values_of_apimachinery(value, expected):
    """quantity_test.go TestJSONWhitespace and TestNewSet: JSON numbers and padded strings."""
    assert canonical(value) == expected


def test_the_forms_named_by_the_controllers_engineer():
    """The request's examples; "1.5Gi" -> "1536Mi" is the example of the Quantity type's doc comment, and
    apimachinery rounds a value below 1n up (TestQuantityParse "3.001n" is 4n)."""
    assert [canonical(v) for v in (1, 0.5, "1.5", "1000m", "1024Mi", "1536Mi", 1000, "100M", "1.5Gi", "3.001n")] \
        == ["1", "500m", "1500m", "1", "1Gi", "1536Mi", "1k", "100M", "1536Mi", "4n"]


@pytest.mark.parametrize("text", INVALID + [True, "", "1Gb", "ten"])
def test_rejected_quantities(text):
    """quantity_test.go TestQuantityParse's invalid inputs (and a bool, as the decoder sees a JSON true) fail."""
    with pytest.raises(QuantityError):
        canonical(text)


def test_rejections_carry_parse_quantitys_messages():
    """An unknown suffix and a malformed number give ParseQuantity's two different errors."""
    for text, message in (("0.1mi", SUFFIX_ERROR), ("aoeu", FORMAT_ERROR)):
        with pytest.raises(QuantityError) as err:
            canonical(text)
        assert str(err.value) == message


GPU_POD = """
apiVersion: v1
kind: Pod
metadata: {name: gpu-int}
spec:
  tolerations: [{key: nvidia.com/gpu, operator: Exists}]
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, "3600"]
    resources:
      limits: {nvidia.com/gpu: 1, cpu: 0.5, memory: 1024Mi}
      requests: {ephemeral-storage: 1000}
  volumes:
  - {name: scratch, emptyDir: {sizeLimit: 2048Mi}}
"""


def test_pod_with_an_integer_gpu_limit_reads_with_the_typed_client(sim_cluster, kubectl, namespace, raw):
    """Item 11: `nvidia.com/gpu: 1` (a YAML int) is served as "1", so read_namespaced_pod deserialises
    (pydantic rejected the number before); requests defaulted from limits carry the same strings."""
    kubectl("apply", "-n", namespace, "-f", "-", stdin=GPU_POD)
    pod = client.CoreV1Api(api_client(sim_cluster)).read_namespaced_pod("gpu-int", namespace)
    resources = pod.spec.containers[0].resources
    assert resources.limits == {"nvidia.com/gpu": "1", "cpu": "500m", "memory": "1Gi"}
    assert resources.requests == {"nvidia.com/gpu": "1", "cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1k"}
    assert pod.spec.volumes[0].empty_dir.size_limit == "2Gi"
    status, body = raw.json("GET", "/api/v1/namespaces/%s/pods/gpu-int" % namespace)
    assert status == 200 and body["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


OTHER_KINDS = """
apiVersion: v1
kind: ResourceQuota
metadata: {name: quota}
spec: {hard: {pods: 10, requests.nvidia.com/gpu: 4, limits.memory: 2048Mi, requests.cpu: 1.5}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: limits}
spec:
  limits:
  - {type: Container, default: {cpu: 0.25, memory: 512Mi}, defaultRequest: {cpu: 100m}, max: {memory: 4096Mi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1073741824}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx:1.27, resources: {limits: {nvidia.com/gpu: 2, memory: 1000000000}}}
"""


def test_other_kinds_serve_canonical_quantities(sim_cluster, kubectl, namespace):
    """ResourceQuota hard, LimitRange limits, PVC requests and pod templates are canonicalised as well and
    read back through the typed client (numbers included: 1000000000 is "1G")."""
    kubectl("apply", "-n", namespace, "-f", "-", stdin=OTHER_KINDS)
    core = client.CoreV1Api(api_client(sim_cluster))
    quota = core.read_namespaced_resource_quota("quota", namespace)
    assert quota.spec.hard == {"pods": "10", "requests.nvidia.com/gpu": "4", "limits.memory": "2Gi",
                               "requests.cpu": "1500m"}
    item = core.read_namespaced_limit_range("limits", namespace).spec.limits[0]
    assert (item.default, item.default_request, item.max) == (
        {"cpu": "250m", "memory": "512Mi"}, {"cpu": "100m"}, {"memory": "4Gi"})
    # a bare number is DecimalSI: 2^30 has no decimal suffix to shorten to, and never gets a binary one
    assert core.read_namespaced_persistent_volume_claim("data", namespace).spec.resources.requests == {
        "storage": "1073741824"}
    deployment = client.AppsV1Api(api_client(sim_cluster)).read_namespaced_deployment("web", namespace)
    assert deployment.spec.template.spec.containers[0].resources.limits == {"nvidia.com/gpu": "2", "memory": "1G"}


def test_a_value_that_is_not_a_quantity_is_rejected_like_the_real_decoder(kubectl, namespace):
    """The real API fails to decode such an object: 400 BadRequest naming the kind and ParseQuantity's error."""
    bad = GPU_POD.replace("cpu: 0.5", "cpu: 1x")
    proc = kubectl("apply", "-n", namespace, "-f", "-", stdin=bad, check=False)
    assert proc.returncode != 0
    assert 'Error from server (BadRequest)' in proc.stderr
    assert 'Pod in version "v1" cannot be handled as a Pod: %s' % FORMAT_ERROR in proc.stderr


INLINE = {"volumeSource", "ephemeralContainerCommon"}     # Go structs embedded with `json:",inline"`
DESCRIPTOR_KINDS = {("", "Pod"): "core.v1.Pod", ("", "PodTemplate"): "core.v1.PodTemplate",
                    ("", "ReplicationController"): "core.v1.ReplicationController", ("", "Node"): "core.v1.Node",
                    ("", "PersistentVolumeClaim"): "core.v1.PersistentVolumeClaim",
                    ("", "PersistentVolume"): "core.v1.PersistentVolume",
                    ("", "ResourceQuota"): "core.v1.ResourceQuota", ("", "LimitRange"): "core.v1.LimitRange",
                    ("apps", "Deployment"): "apps.v1.Deployment", ("apps", "ReplicaSet"): "apps.v1.ReplicaSet",
                    ("apps", "StatefulSet"): "apps.v1.StatefulSet", ("apps", "DaemonSet"): "apps.v1.DaemonSet",
                    ("batch", "Job"): "batch.v1.Job", ("batch", "CronJob"): "batch.v1.CronJob",
                    ("autoscaling", "HorizontalPodAutoscaler"): "autoscaling.v2.HorizontalPodAutoscaler",
                    ("node.k8s.io", "RuntimeClass"): "node.v1.RuntimeClass",
                    ("resource.k8s.io", "ResourceSlice"): "resource.v1beta2.ResourceSlice",
                    ("storage.k8s.io", "CSIStorageCapacity"): "storage.v1.CSIStorageCapacity"}


def _descriptor_paths(registry, message_name, prefix="", seen=frozenset()):
    """JSON paths of every Quantity field reachable from a message of kubectl's embedded schemas."""
    paths = []
    for field in registry.messages[message_name].fields.values():
        if field.type_name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
            paths.append(prefix + field.name)
            continue
        sub = registry.messages.get(field.type_name)
        if sub is None or field.type_name in seen:
            continue
        step = "" if field.name in INLINE else field.name + ("[]" if field.repeated else "") + "."
        if sub.map_entry:
            value = sub.fields.get(2)
            if value is not None and value.type_name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
                paths.append(prefix + field.name + "{}")
            elif value is not None and value.type_name in registry.messages:
                paths += _descriptor_paths(registry, value.type_name, prefix + field.name + "{}.",
                                           seen | {value.type_name})
            continue
        paths += _descriptor_paths(registry, field.type_name, prefix + step, seen | {field.type_name})
    return paths


def test_quantity_fields_cover_what_kubectls_schemas_type_as_quantity():
    """QUANTITY_FIELDS lists, per kind, exactly the Quantity fields of the protobuf schemas kubectl 1.33
    embeds (the Go types' fields), so a kind's quantities are all canonicalised and nothing else is."""
    registry = protobuf.Registry.get()
    assert set(QUANTITY_FIELDS) == set(DESCRIPTOR_KINDS)
    for key, message in DESCRIPTOR_KINDS.items():
        assert sorted(QUANTITY_FIELDS[key]) == sorted(_descriptor_paths(registry, "k8s.io.api." + message)), key


def test_scenario_node_capacity_is_canonical(sim_cluster):
    """Node capacity written by the scenario loader (pool memory, GPU counts) is stored canonical too."""
    nodes = client.CoreV1Api(api_client(sim_cluster)).list_node().items
    assert nodes
    for node in nodes:
        for name, value in node.status.capacity.items():
            assert isinstance(value, str) and canonical(value) == value, (node.metadata.name, name, value)
