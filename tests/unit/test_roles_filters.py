"""The pure helpers behind the stack roles: readiness, image rehosting, chart sources, version pins, certificates."""
from __future__ import annotations

import datetime
import json

import pytest
from ansible.errors import AnsibleFilterError
from cryptography import x509

from ansible_collections.k8s_ai.conformance.plugins.filter import stack
from ansible_collections.k8s_ai.conformance.plugins.modules import webhook_certificate
from ansible_collections.k8s_ai.conformance.plugins.test.stack import pinned_version


def deployment(name, replicas=1, available=1, updated=1, total=None, generation=2, observed=2):
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ns", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, "availableReplicas": available, "updatedReplicas": updated,
                   "replicas": updated if total is None else total},
    }


def daemonset(name, desired=2, ready=2, available=2, updated=2, observed=1):
    status = {"observedGeneration": observed, "numberReady": ready, "numberAvailable": available, "updatedNumberScheduled": updated}
    if desired is not None:
        status["desiredNumberScheduled"] = desired
    return {"kind": "DaemonSet", "metadata": {"name": name, "namespace": "ns", "generation": 1}, "status": status}


def statefulset(name, replicas=1, ready=1, updated=1):
    return {"kind": "StatefulSet", "metadata": {"name": name, "namespace": "ns", "generation": 1}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": updated}}


class TestWorkloadsNotReady:
    def test_ready_workloads_give_nothing(self):
        objs = [deployment("a"), daemonset("b"), statefulset("c"), daemonset("no-gpu-nodes", desired=0, ready=0, available=0, updated=0)]
        assert not stack.workloads_not_ready(objs)

    def test_names_the_workload_and_counts(self):
        problems = stack.workloads_not_ready([deployment("kueue-controller-manager", available=0), daemonset("exporter", ready=1, available=1)])
        assert problems == [
            "Deployment ns/kueue-controller-manager: 0/1 available (1 updated, 1 total)",
            "DaemonSet ns/exporter: 1/2 ready (2 updated, 1 available)",
        ]

    @pytest.mark.parametrize("obj, expected", [
        # The controller has not seen the new spec yet: old status must not count as ready.
        (deployment("d", observed=1), "rollout not yet observed"),
        # Old pods still around after a rollout (kubectl rollout status waits for them too).
        (deployment("d", total=2), "1/1 available (1 updated, 2 total)"),
        (daemonset("ds", desired=None), "not yet scheduled"),
        (daemonset("ds", updated=1), "2/2 ready (1 updated, 2 available)"),
        (statefulset("prometheus", ready=0), "0/1 ready (1 updated)"),
    ])
    def test_not_ready_states(self, obj, expected):
        (problem,) = stack.workloads_not_ready([obj])
        assert expected in problem

    def test_expected_workloads_missing_are_reported(self):
        problems = stack.workloads_not_ready([deployment("operator")], ["Deployment/operator", "StatefulSet/prometheus-x"], "monitoring")
        assert problems == ["StatefulSet monitoring/prometheus-x: not created yet"]

    def test_rejects_other_kinds(self):
        with pytest.raises(AnsibleFilterError, match="not 'Pod'"):
            stack.workloads_not_ready([{"kind": "Pod", "metadata": {"name": "p"}}])


class TestRehostImage:
    @pytest.mark.parametrize("image, expected", [
        ("nvcr.io/nvidia/k8s/dcgm-exporter", "mirror.local:5000/nvidia/k8s/dcgm-exporter"),
        ("registry.k8s.io/kueue/kueue", "mirror.local:5000/kueue/kueue"),
        ("localhost/x/y:1", "mirror.local:5000/x/y:1"),
        ("docker.io/envoyproxy/gateway:v1.9.0", "mirror.local:5000/envoyproxy/gateway:v1.9.0"),
        # Docker Hub names without a registry host: the path stays whole.
        ("envoyproxy/gateway", "mirror.local:5000/envoyproxy/gateway"),
        ("busybox", "mirror.local:5000/library/busybox"),
    ])
    def test_moves_to_the_mirror_keeping_the_path(self, image, expected):
        assert stack.rehost_image(image, "mirror.local:5000/") == expected

    def test_no_registry_keeps_the_image(self):
        assert stack.rehost_image("quay.io/kuberay/operator", "") == "quay.io/kuberay/operator"

    def test_image_values_nest_dotted_paths(self):
        values = stack.image_values({"operator.repository": "nvcr.io/nvidia", "driver.manager.repository": "nvcr.io/nvidia/cloud-native",
                                     "node-feature-discovery.image.repository": "registry.k8s.io/nfd/node-feature-discovery"}, "m.local")
        assert values == {
            "operator": {"repository": "m.local/nvidia"},
            "driver": {"manager": {"repository": "m.local/nvidia/cloud-native"}},
            "node-feature-discovery": {"image": {"repository": "m.local/nfd/node-feature-discovery"}},
        }
        assert stack.image_values({"operator.repository": "nvcr.io/nvidia"}, "") == {}


class TestChartSource:
    def test_remote_kinds(self):
        assert stack.chart_source("oci://registry.k8s.io/kueue/charts/kueue", "", "0.19.2")["kind"] == "oci"
        repo = stack.chart_source("gpu-operator", "https://helm.ngc.nvidia.com/nvidia", "v26.7.0")
        assert (repo["kind"], repo["repo_url"], repo["version"], repo["error"]) == ("repo", "https://helm.ngc.nvidia.com/nvidia", "v26.7.0", "")

    def test_local_chart_is_absolute_and_unversioned(self, tmp_path, monkeypatch):
        chart = tmp_path / "kueue"
        chart.mkdir()
        (chart / "Chart.yaml").write_text("name: kueue\n")
        monkeypatch.chdir(tmp_path)
        src = stack.chart_source("kueue", "", "0.19.2")
        assert (src["kind"], src["ref"], src["version"], src["error"]) == ("local", str(chart), "", "")

    def test_a_path_is_local_even_with_a_repository_url(self, tmp_path):
        """Roles default to their upstream repository URL; a local chart must not be looked up there."""
        chart = tmp_path / "kuberay-operator"
        chart.mkdir()
        (chart / "Chart.yaml").write_text("name: kuberay-operator\n")
        src = stack.chart_source(str(chart), "https://ray-project.github.io/kuberay-helm/", "1.7.0")
        assert (src["kind"], src["repo_url"], src["error"]) == ("local", "", "")
        missing = stack.chart_source("/nonexistent/kuberay-operator", "https://ray-project.github.io/kuberay-helm/", "1.7.0")
        assert missing["kind"] == "local" and "does not exist" in missing["error"]

    def test_bad_references_name_the_fix(self, tmp_path):
        missing = stack.chart_source(str(tmp_path / "nope"), "", "1.0.0")
        assert "does not exist" in missing["error"] and "repository URL" in missing["error"]
        assert "not a Helm chart" in stack.chart_source(str(tmp_path), "", "1.0.0")["error"]
        assert "empty" in stack.chart_source("", "", "1.0.0")["error"]


@pytest.mark.parametrize("version, pinned", [
    ("0.19.2", True), ("v26.7.0", True), ("v1.0.0-rc.1", True), ("4.8.2", True),
    ("latest", False), ("v0.0.0-latest", False), ("^1.2.0", False), ("~1.2", False), ("1.x", False),
    ("*", False), ("", False), (None, False), ("1.2", False), (">=1.0.0", False),
])
def test_pinned_version(version, pinned):
    assert pinned_version(version) is pinned


class TestWebhookCertificate:
    NAMES = ["kuberay-operator-webhook.kuberay-system.svc", "kuberay-operator-webhook.kuberay-system.svc.cluster.local"]

    def test_issued_certificate_serves_the_names_and_is_kept(self):
        ca, cert, key = webhook_certificate.issue(self.NAMES, 3650)
        parsed = x509.load_pem_x509_certificate(cert.encode())
        parsed.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.encode()))
        sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        assert sans == self.NAMES
        assert webhook_certificate.reuse_problem(ca, cert, key, self.NAMES, 30) == ""

    def test_reasons_to_renew(self):
        ca, cert, key = webhook_certificate.issue(self.NAMES, 3650)
        other_ca, other_cert, other_key = webhook_certificate.issue(self.NAMES, 3650)
        assert webhook_certificate.reuse_problem("", cert, key, self.NAMES, 30) == "no certificate given"
        assert webhook_certificate.reuse_problem(ca, cert, other_key, self.NAMES, 30) == "the key does not belong to the certificate"
        assert webhook_certificate.reuse_problem(other_ca, cert, key, self.NAMES, 30) == "the certificate was not issued by the CA"
        assert "does not cover x.y.svc" in webhook_certificate.reuse_problem(ca, cert, key, ["x.y.svc"], 30)
        assert "unreadable PEM" in webhook_certificate.reuse_problem(ca, "garbage", key, self.NAMES, 30)
        short_ca, short_cert, short_key = webhook_certificate.issue(self.NAMES, 10)
        assert webhook_certificate.reuse_problem(short_ca, short_cert, short_key, self.NAMES, 30) == "the certificate expires within 30 days"
        expiry = x509.load_pem_x509_certificate(short_cert.encode()).not_valid_after_utc
        assert expiry - datetime.datetime.now(datetime.timezone.utc) < datetime.timedelta(days=11)


def run_webhook_certificate(capsys, **args):
    """main() of the module as Ansible runs it; the JSON it prints."""
    from ansible.module_utils.testing import patch_module_args  # pylint: disable=import-outside-toplevel
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            webhook_certificate.main()
    return json.loads(capsys.readouterr().out)


def test_webhook_certificate_module_keeps_what_fits_without_echoing_the_key(capsys):
    names = TestWebhookCertificate.NAMES
    first = run_webhook_certificate(capsys, dns_names=names)
    assert first["changed"] is True and first["reason"] == "no certificate given"
    assert first["key"].startswith("-----BEGIN PRIVATE KEY-----")
    again = run_webhook_certificate(capsys, dns_names=names, ca_cert=first["ca_cert"], cert=first["cert"], key=first["key"])
    # Returning the key it was given would come back as VALUE_SPECIFIED_IN_NO_LOG_PARAMETER and, stored, break
    # the webhook on the second run: the module keeps it to itself.
    assert (again["changed"], again["reason"], again["key"]) == (False, "", "")
    assert (again["ca_cert"], again["cert"]) == (first["ca_cert"], first["cert"])
    assert "NO_LOG" not in json.dumps({k: v for k, v in again.items() if k != "invocation"})


def test_webhook_certificate_module_refuses_settings_that_would_renew_every_run(capsys):
    result = run_webhook_certificate(capsys, dns_names=["a.b.svc"], valid_days=10, renew_before_days=30)
    assert result["failed"] is True and "must be larger than renew_before_days" in result["msg"]
