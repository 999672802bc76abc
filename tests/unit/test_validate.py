"""product_validate: CNCF's validate.go rules on real submissions and on broken variants of them."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import validator as v

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRODUCTS = os.path.join(ROOT, "..", "shared", "fixtures", "upstream", "product")
SUBMISSIONS = sorted(os.path.relpath(os.path.join(dirpath), PRODUCTS)
                     for dirpath, dummy, files in os.walk(PRODUCTS) if "PRODUCT.yaml" in files)
RULES = dict((value, name) for name, value in vars(v).items() if name.startswith("RULE_"))

# Real submissions that break a rule of today's validate.go. CNCF's CI validates only the PRODUCT.yaml files a
# pull request changes, so files merged before a rule existed were never re-checked; each entry says why the
# validator is right to refuse the file as it stands.
K8S_URL_LATER = "k8sConformanceUrl is required for every version since 2025-12; this file predates that rule"
LOGO_LATER = "productLogoUrl is a PNG; validate.go now refuses anything but SVG/EPS/AI (instructions.md always asked for it)"
KNOWN_BROKEN = {
    "v1.33/alauda": ([("metadata.productLogoUrl", "RULE_LOGO")], LOGO_LATER),
    "v1.33/chinaunicom-csk": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED"), ("metadata.productLogoUrl", "RULE_LOGO")],
                              K8S_URL_LATER + "; " + LOGO_LATER),
    "v1.33/daocloud": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED"),
                        ("spec.schedulingOrchestration.cluster_autoscaling", "RULE_MUST")],
                       K8S_URL_LATER + "; cluster_autoscaling is N/A on a MUST, merged before CI validated submissions"),
    "v1.33/gardener": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED")], K8S_URL_LATER),
    "v1.33/jdcloud": ([("metadata.contactEmailAddress", "RULE_META_REQUIRED"), ("metadata.k8sConformanceUrl", "RULE_META_REQUIRED"),
                       ("spec.accelerators.dra_support", "RULE_STATUS")],
                      "contact_email_address is indented at the top level, outside metadata; dra_support (a SHOULD) has "
                      "status \"\" but lists evidence, which only a blank SHOULD without evidence may do; " + K8S_URL_LATER),
    "v1.33/palette": ([("metadata.contactEmailAddress", "RULE_META_REQUIRED"), ("metadata.k8sConformanceUrl", "RULE_META_REQUIRED")],
                      "no contactEmailAddress at all; " + K8S_URL_LATER),
    "v1.33/rke2": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED")], K8S_URL_LATER),
    "v1.34/OKE": ([("metadata.contactEmailAddress", "RULE_META_REQUIRED"), ("metadata.k8sConformanceUrl", "RULE_META_REQUIRED")],
                  "no contactEmailAddress; " + K8S_URL_LATER),
    "v1.34/ack": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED")], K8S_URL_LATER),
    "v1.34/aks": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED")], K8S_URL_LATER),
    "v1.34/cce": ([("metadata.productLogoUrl", "RULE_LOGO")], LOGO_LATER),
    "v1.34/eks": ([("metadata.contactEmailAddress", "RULE_META_REQUIRED"), ("metadata.k8sConformanceUrl", "RULE_META_REQUIRED"),
                   ("metadata.productLogoUrl", "RULE_LOGO")], "no contactEmailAddress; " + K8S_URL_LATER + "; " + LOGO_LATER),
    "v1.34/gke": ([("metadata.contactEmailAddress", "RULE_META_REQUIRED"), ("metadata.k8sConformanceUrl", "RULE_META_REQUIRED")],
                  "no contactEmailAddress; " + K8S_URL_LATER),
    "v1.34/lke": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED"), ("metadata.productLogoUrl", "RULE_LOGO")],
                  K8S_URL_LATER + "; " + LOGO_LATER),
    "v1.34/ovh": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED"), ("metadata.platformVersion", "RULE_META_STRING"),
                   ("spec.schedulingOrchestration.gang_scheduling", "RULE_EVIDENCE_FILE"),
                   ("spec.schedulingOrchestration.pod_autoscaling", "RULE_EVIDENCE_FILE"),
                   ("spec.security.secure_accelerator_access", "RULE_EVIDENCE_FILE")],
                  "platformVersion: 1.0 is a YAML float, not a string; evidence such as ./schedulingOrchestration.md#gang_scheduling "
                  "names a file with a #fragment, and validate.go stats the path as written (no such file); " + K8S_URL_LATER),
    "v1.34/talos": ([("spec.observability.accelerator_metrics.evidence", "RULE_SHAPE"),
                     ("spec.observability.ai_service_metrics.evidence", "RULE_SHAPE"),
                     ("spec.schedulingOrchestration.cluster_autoscaling.evidence", "RULE_SHAPE")],
                    "evidence: \"N/A\" is a string where validate.go's struct needs a list of strings: yaml.v3 fails to decode "
                    "the file, so nothing else is checked"),
    "v1.34/vks": ([("metadata.k8sConformanceUrl", "RULE_META_REQUIRED"), ("metadata.productLogoUrl", "RULE_LOGO")],
                  K8S_URL_LATER + "; " + LOGO_LATER),
    "v1.35/cce": ([("metadata.productLogoUrl", "RULE_LOGO")], LOGO_LATER),
    "v1.35/eks": ([("metadata.productLogoUrl", "RULE_LOGO")], LOGO_LATER),
}


def classify(errors):
    """(location, RULE_ name) for each error: 'spec.x.y (line 3): message (CNCF rule: ...)'."""
    pairs = set()
    for error in errors:
        location = re.sub(r" \(line \d+\)$", "", error.split(": ", 1)[0])
        rule = error.rsplit("(CNCF rule: ", 1)[1][:-1]
        pairs.add((location, RULES[rule]))
    return pairs


def stage(rel, tmp_path, text=None):
    """Copy a real submission to <tmp>/<vX.Y>/<dir>/PRODUCT.yaml with stand-ins for its local evidence files.

    The fixtures hold only PRODUCT.yaml; upstream the evidence files sit beside it. A #fragment is not part of a
    file name, so the stand-in is the file before the '#' (validate.go does not strip it: see ovh).
    """
    source = os.path.join(PRODUCTS, rel, "PRODUCT.yaml")
    target = tmp_path / rel
    target.mkdir(parents=True)
    with open(source) as handle:
        original = handle.read()
    (target / "PRODUCT.yaml").write_text(original if text is None else text)
    for entry in _local_evidence(original):
        stub = target / entry.split("#")[0]
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("evidence stand-in\n")
    return str(target / "PRODUCT.yaml")


def _local_evidence(text):
    data = yaml.safe_load(text)
    for requirements in (data.get("spec") or {}).values():
        for req in requirements or []:
            evidence = req.get("evidence")
            for entry in evidence if isinstance(evidence, list) else []:
                if entry and not str(entry).startswith(("http://", "https://")):
                    yield str(entry)


def test_every_real_submission_is_covered():
    assert len(SUBMISSIONS) == 41
    assert set(KNOWN_BROKEN) <= set(SUBMISSIONS)


@pytest.mark.parametrize("rel", SUBMISSIONS)
def test_real_submission(rel, tmp_path):
    outcome = v.validate_file(stage(rel, tmp_path))
    expected, why = KNOWN_BROKEN.get(rel, ([], "valid"))
    assert classify(outcome["errors"]) == set(expected), why
    assert outcome["valid"] is (not expected)
    assert outcome["version"] == rel[1:5]
    assert outcome["checked_urls"] == 0 and "check_urls is false" in outcome["warnings"][-1]


def test_real_local_evidence_must_exist(tmp_path):
    # kops v1.35 links files of its automated suite; without them the submission is refused (rule 12).
    target = tmp_path / "v1.35" / "kops"
    target.mkdir(parents=True)
    shutil.copy(os.path.join(PRODUCTS, "v1.35", "kops", "PRODUCT.yaml"), str(target))
    outcome = v.validate_file(str(target / "PRODUCT.yaml"))
    assert classify(outcome["errors"]) == set(("spec.%s" % where, "RULE_EVIDENCE_FILE") for where in (
        "accelerators.dra_support", "accelerators.driver_runtime_management", "networking.ai_inference",
        "schedulingOrchestration.gang_scheduling", "schedulingOrchestration.cluster_autoscaling",
        "schedulingOrchestration.pod_autoscaling", "observability.accelerator_metrics", "observability.ai_service_metrics",
        "security.secure_accelerator_access", "operator.robust_controller"))
    assert any('"tests/TestAcceleratorsDRASupport/output.md" not found at %s' % target in err for err in outcome["errors"])


def test_snake_case_metadata_is_accepted():
    # Taichu v1.34 writes every metadata key in snake_case, as instructions.md's example does.
    with open(os.path.join(PRODUCTS, "v1.34", "Taichu", "PRODUCT.yaml")) as handle:
        assert "product_logo_url:" in handle.read()
    assert v.validate_file(os.path.join(PRODUCTS, "v1.34", "Taichu", "PRODUCT.yaml"))["valid"]


def test_edited_descriptions_pass_with_a_warning():
    # JDOS v1.33 (like gardener) shortened accelerator_metrics' description: validate.go passes it, instructions.md forbids it.
    outcome = v.validate_text(_read("v1.33/jdos"), "v1.33/jdos/PRODUCT.yaml")
    assert outcome["valid"]
    assert any("spec.observability.accelerator_metrics: description or level differs" in w for w in outcome["warnings"])


def test_extra_and_duplicate_ids_warn():
    # dra_support is gone in 1.36: validate.go ignores it there, we warn; a duplicated id is read as the last one.
    data = yaml.safe_load(_read("v1.36/aks"))
    data["spec"]["accelerators"].append({"id": "dra_support", "description": "d", "level": "MUST", "status": "Implemented",
                                         "evidence": [], "notes": ""})
    data["spec"]["operator"].append(dict(data["spec"]["operator"][0]))
    outcome = v.validate_text(yaml.safe_dump(data, sort_keys=False), "v1.36/aks/PRODUCT.yaml")
    assert outcome["valid"]
    assert any("spec.accelerators.dra_support is not a requirement of the 1.36 checklist" in w for w in outcome["warnings"])
    assert any("spec.operator.robust_controller appears more than once" in w for w in outcome["warnings"])


# ------------------------------------------------------------------------------------------------
# Broken variants of a real, valid submission (GKE v1.35: every requirement Implemented, URLs only)
# ------------------------------------------------------------------------------------------------

BASE = "v1.35/gke"
PATH = "out/v1.35/gke/PRODUCT.yaml"


def _read(rel):
    with open(os.path.join(PRODUCTS, rel, "PRODUCT.yaml")) as handle:
        return handle.read()


def _variant(edit):
    data = yaml.safe_load(_read(BASE))
    edit(data)
    return yaml.safe_dump(data, sort_keys=False, width=1000)


def _req(data, rid):
    return [req for reqs in data["spec"].values() for req in reqs if req["id"] == rid][0]


def _errors_of(text, path=PATH, **kwargs):
    outcome = v.validate_text(text, path, **kwargs)
    return outcome, classify(outcome["errors"])


def test_base_is_valid_and_round_trips():
    assert v.validate_text(_read(BASE), PATH)["valid"]
    assert v.validate_text(_variant(lambda data: None), PATH)["valid"]


def test_missing_category():
    outcome, pairs = _errors_of(_variant(lambda data: data["spec"].pop("operator")))
    assert pairs == {("spec.operator", "RULE_CATEGORY")}
    assert "category is missing (the 1.35 checklist has accelerators, networking" in outcome["errors"][0]


def test_requirement_moved_to_another_category():
    def move(data):
        data["spec"]["networking"].append(_req(data, "gang_scheduling"))
        data["spec"]["schedulingOrchestration"] = [r for r in data["spec"]["schedulingOrchestration"] if r["id"] != "gang_scheduling"]
    outcome, pairs = _errors_of(_variant(move))
    assert pairs == {("spec.schedulingOrchestration.gang_scheduling", "RULE_REQUIREMENT")}
    assert "(it is under networking; move it back to schedulingOrchestration)" in outcome["errors"][0]


def test_must_partially_implemented():
    outcome, pairs = _errors_of(_variant(lambda data: _req(data, "robust_controller").update(status="Partially Implemented")))
    assert pairs == {("spec.operator.robust_controller", "RULE_MUST")}
    assert outcome["errors"] == ['spec.operator.robust_controller: status "Partially Implemented" is not allowed for a MUST '
                                 'requirement (CNCF rule: every MUST must be Implemented)']


def test_na_without_notes():
    outcome, pairs = _errors_of(_variant(lambda data: _req(data, "gpu_sharing").update(status="N/A", notes="")))
    assert pairs == {("spec.accelerators.gpu_sharing", "RULE_NA_NOTES")}
    dummy, pairs = _errors_of(_variant(lambda data: _req(data, "cluster_autoscaling").update(status="N/A", notes="")))
    assert pairs == {("spec.schedulingOrchestration.cluster_autoscaling", "RULE_MUST"),
                     ("spec.schedulingOrchestration.cluster_autoscaling", "RULE_NA_NOTES")}


def test_na_with_notes_on_a_should_is_fine_but_whitespace_notes_warn():
    assert v.validate_text(_variant(lambda data: _req(data, "gpu_sharing").update(status="N/A", notes="No GPUs.")), PATH)["valid"]
    outcome = v.validate_text(_variant(lambda data: _req(data, "gpu_sharing").update(status="N/A", notes="  ")), PATH)
    assert outcome["valid"] and any("only whitespace" in w for w in outcome["warnings"])


@pytest.mark.parametrize("status, hint", [
    ("implemented", 'did you mean "Implemented"?'),
    ("Partially implemented", 'did you mean "Partially Implemented"?'),
    ("NA", 'did you mean "N/A"?'),
])
def test_bad_status_spelling(status, hint):
    outcome, pairs = _errors_of(_variant(lambda data: _req(data, "gpu_sharing").update(status=status)))
    assert pairs == {("spec.accelerators.gpu_sharing", "RULE_STATUS")}
    assert hint in outcome["errors"][0]


def test_blank_should_is_skipped_only_without_evidence():
    assert v.validate_text(_variant(lambda data: _req(data, "gpu_sharing").update(status="", evidence=[])), PATH)["valid"]
    outcome, pairs = _errors_of(_variant(lambda data: _req(data, "gpu_sharing").update(status="")))
    assert pairs == {("spec.accelerators.gpu_sharing", "RULE_STATUS")}
    assert "empty the evidence list to leave the SHOULD blank" in outcome["errors"][0]


def test_blank_must_is_refused_twice_like_validate_go():
    dummy, pairs = _errors_of(_variant(lambda data: _req(data, "ai_inference").update(status="", evidence=[])))
    assert pairs == {("spec.networking.ai_inference", "RULE_STATUS"), ("spec.networking.ai_inference", "RULE_MUST")}


@pytest.mark.parametrize("field", ["vendorName", "repoUrl"])
def test_placeholder_metadata(field):
    outcome, pairs = _errors_of(_variant(lambda data: data["metadata"].update({field: "[Vendor Name]"})))
    assert pairs == {("metadata.%s" % field, "RULE_PLACEHOLDER")}      # also for the optional repoUrl


def test_missing_and_empty_metadata():
    dummy, pairs = _errors_of(_variant(lambda data: data["metadata"].pop("contactEmailAddress")))
    assert pairs == {("metadata.contactEmailAddress", "RULE_META_REQUIRED")}
    dummy, pairs = _errors_of(_variant(lambda data: data["metadata"].update(description="")))
    assert pairs == {("metadata.description", "RULE_META_EMPTY")}
    assert v.validate_text(_variant(lambda data: data["metadata"].update(repoUrl="")), PATH)["valid"]   # optional


@pytest.mark.parametrize("raw, kind", [
    ("1.10", "float"), ("1e3", "float"), ("2", "integer"), ("0x1F", "integer"), ("true", "boolean"),
    ("[1, 2]", "list"), ("{a: b}", "mapping"),
])
def test_metadata_values_must_be_strings(raw, kind):
    text = re.sub(r"(?m)^  platformVersion: .*$", "  platformVersion: %s" % raw, _read(BASE))
    outcome, pairs = _errors_of(text)
    assert pairs == {("metadata.platformVersion", "RULE_META_STRING")}
    assert "is a %s, not a string" % kind in outcome["errors"][0]


@pytest.mark.parametrize("raw", ["yes", "off", "2026-01-02", "1:20", "v1.35", "'1.10'", "1.2.3", ".5.x"])
def test_yaml_1_1_lookalikes_are_strings_for_the_go_validator(raw):
    # PyYAML (YAML 1.1) reads yes/off as booleans, 2026-01-02 as a date and 1:20 as 80; yaml.v3 reads strings.
    text = re.sub(r"(?m)^  platformVersion: .*$", "  platformVersion: %s" % raw, _read(BASE))
    assert v.validate_text(text, PATH)["valid"]


def test_null_metadata_is_missing():
    text = re.sub(r"(?m)^  platformVersion: .*$", "  platformVersion: ~", _read(BASE))
    assert classify(v.validate_text(text, PATH)["errors"]) == {("metadata.platformVersion", "RULE_META_REQUIRED")}


def test_scalar_evidence_stops_validation():
    def edit(data):
        _req(data, "gang_scheduling")["evidence"] = "N/A"
        data["metadata"]["vendorName"] = "[Vendor Name]"      # not reported: validate.go never gets that far
    outcome, pairs = _errors_of(_variant(edit))
    assert pairs == {("spec.schedulingOrchestration.gang_scheduling.evidence", "RULE_SHAPE")}
    assert 'must be a list of strings, got the string "N/A"' in outcome["errors"][0]


@pytest.mark.parametrize("value, message", [
    ([{"url": "x"}], "every entry must be a string"),
    ({"a": "b"}, "must be a list of strings, got the mapping"),
])
def test_other_evidence_shapes(value, message):
    outcome, pairs = _errors_of(_variant(lambda data: _req(data, "gang_scheduling").update(evidence=value)))
    assert pairs == {("spec.schedulingOrchestration.gang_scheduling.evidence", "RULE_SHAPE")}
    assert message in outcome["errors"][0]


def test_requirement_field_and_section_shapes():
    dummy, pairs = _errors_of(_variant(lambda data: _req(data, "gang_scheduling").update(notes=["a"])))
    assert pairs == {("spec.schedulingOrchestration.gang_scheduling.notes", "RULE_SHAPE")}
    dummy, pairs = _errors_of(_variant(lambda data: data["spec"].update(operator={"id": "robust_controller"})))
    assert pairs == {("spec.operator", "RULE_SHAPE")}
    dummy, pairs = _errors_of(_variant(lambda data: data["spec"]["operator"].append("robust_controller")))
    assert pairs == {("spec.operator[1]", "RULE_SHAPE")}
    dummy, pairs = _errors_of("- a list\n")
    assert pairs == {("PRODUCT.yaml", "RULE_SHAPE")}


def test_missing_local_evidence_file(tmp_path):
    product = tmp_path / "v1.35" / "gke"
    product.mkdir(parents=True)
    text = _variant(lambda data: _req(data, "gang_scheduling").update(evidence=["evidence/gang.md", "/abs/kueue.md", ""]))
    (product / "PRODUCT.yaml").write_text(text)
    outcome = v.validate_file(str(product / "PRODUCT.yaml"))
    assert classify(outcome["errors"]) == {("spec.schedulingOrchestration.gang_scheduling", "RULE_EVIDENCE_FILE")}
    assert len(outcome["errors"]) == 2          # the empty entry is skipped, as in validate.go
    (product / "evidence").mkdir()
    (product / "evidence" / "gang.md").write_text("ok")
    (product / "abs").mkdir()
    (product / "abs" / "kueue.md").write_text("ok")   # Go's filepath.Join keeps an absolute entry under the directory
    assert v.validate_file(str(product / "PRODUCT.yaml"))["valid"]


def test_evidence_outside_the_submission_warns(tmp_path):
    (tmp_path / "v1.35" / "gke").mkdir(parents=True)
    (tmp_path / "v1.35" / "shared.md").write_text("ok")
    text = _variant(lambda data: _req(data, "gang_scheduling").update(evidence=["../shared.md"]))
    outcome = v.validate_text(text, str(tmp_path / "v1.35" / "gke" / "PRODUCT.yaml"))
    assert outcome["valid"] and any("points outside the submission directory" in w for w in outcome["warnings"])


@pytest.mark.parametrize("url", [
    "https://github.com/cncf/k8s-conformance/pull/4012",
    "http://github.com/cncf/k8s-conformance/tree/master/v1.35/gke",
    "https://github.com/cncf/k8s-conformance/tree/master/v1.35/gke/PRODUCT.yaml",
    "https://github.com/cncf/k8s-conformance/tree/release/v1.35/gke",
])
def test_bad_k8s_conformance_url(url):
    outcome, pairs = _errors_of(_variant(lambda data: data["metadata"].update(k8sConformanceUrl=url)))
    assert pairs == {("metadata.k8sConformanceUrl", "RULE_K8S_URL")}
    assert url in outcome["errors"][0]


def test_good_k8s_conformance_urls_are_queued_for_the_reachability_check():
    for url in ("https://github.com/cncf/k8s-conformance/tree/main/v1.35/gke/",
                "https://github.com/cncf/k8s-conformance/tree/master/v1.34/turbo-encabulator"):
        outcome = v.validate_text(_variant(lambda data, url=url: data["metadata"].update(k8sConformanceUrl=url)), PATH)
        assert outcome["valid"] and ("metadata.k8sConformanceUrl", url, "k8sConformanceUrl") in outcome["urls"]


def test_k8s_conformance_url_is_required_even_where_the_template_lacks_it():
    text = _read("v1.36/aks")
    assert "k8sConformanceUrl" in text
    without = "\n".join(line for line in text.splitlines() if "k8sConformanceUrl" not in line)
    assert classify(v.validate_text(without, "v1.36/aks/PRODUCT.yaml")["errors"]) == {("metadata.k8sConformanceUrl", "RULE_META_REQUIRED")}


def test_logo_must_be_svg_eps_or_ai():
    dummy, pairs = _errors_of(_variant(lambda data: data["metadata"].update(productLogoUrl="https://x.example/logo.PNG")))
    assert pairs == {("metadata.productLogoUrl", "RULE_LOGO")}
    for good in ("https://x.example/logo.SVG", "https://x.example/logo.eps", "https://x.example/l.ai"):
        assert v.validate_text(_variant(lambda data, good=good: data["metadata"].update(productLogoUrl=good)), PATH)["valid"]


def test_wrong_version_directory():
    # A 1.34 submission filed under v1.35/ lacks the three SHOULDs 1.35 added.
    text = _read("v1.34/daocloud")
    outcome, pairs = _errors_of(text, path="v1.35/daocloud/PRODUCT.yaml")
    assert {("spec.accelerators.%s" % rid, "RULE_REQUIREMENT") for rid in
            ("driver_runtime_management", "gpu_sharing", "virtualized_accelerator")} <= pairs
    assert any("kubernetesVersion \"v1.34\" does not match the checklist version 1.35" in w for w in outcome["warnings"])


@pytest.mark.parametrize("path, message", [
    ("gke/PRODUCT.yaml", "cannot determine the checklist version from gke/PRODUCT.yaml"),
    ("v1.35-gke/PRODUCT.yaml", "cannot determine the checklist version"),
    ("v1.32/gke/PRODUCT.yaml", "no checklist for Kubernetes 1.32; supported versions: 1.33, 1.34, 1.35, 1.36"),
])
def test_version_comes_from_the_path(path, message):
    outcome, pairs = _errors_of(_read(BASE), path=path)
    assert pairs == {("path", "RULE_VERSION")} and message in outcome["errors"][0]


def test_version_override():
    outcome = v.validate_text(_read(BASE), "gke/PRODUCT.yaml", version="v1.35")
    assert outcome["valid"] and outcome["version"] == "1.35"
    assert any("CNCF's validator would refuse it" in w for w in outcome["warnings"])
    outcome = v.validate_text(_read(BASE), "v1.34/gke/PRODUCT.yaml", version="1.35")
    assert outcome["valid"] and any("overrides the path's version 1.34" in w for w in outcome["warnings"])
    with pytest.raises(v.ValidatorUsageError, match="quoted string"):
        v.validate_text(_read(BASE), PATH, version="latest")


def test_unparsable_yaml_is_invalid_not_a_crash(tmp_path):
    for text in ("metadata: [\n", "metadata:\n  a: 1\n  a: 2\nspec: {}\n"):
        outcome, pairs = _errors_of(text)
        assert pairs == {("PRODUCT.yaml", "RULE_SHAPE")} and not outcome["valid"]
    assert "already defined at line 2" in v.validate_text("metadata:\n  a: 1\n  a: 2\n", PATH)["errors"][0]
    product = tmp_path / "v1.35" / "x"
    product.mkdir(parents=True)
    (product / "PRODUCT.yaml").write_bytes(b"metadata:\n  platformName: \xff\xfe\n")
    outcome = v.validate_file(str(product / "PRODUCT.yaml"))
    assert not outcome["valid"] and "not UTF-8" in outcome["errors"][0]


def test_empty_file_misses_both_sections():
    outcome, pairs = _errors_of("")
    assert pairs == {("metadata", "RULE_META_REQUIRED"), ("spec", "RULE_SPEC")}


def test_usage_errors(tmp_path):
    with pytest.raises(v.ValidatorUsageError, match="does not exist: give the path of a PRODUCT.yaml"):
        v.validate_file(str(tmp_path / "v1.35" / "x" / "PRODUCT.yaml"))
    with pytest.raises(v.ValidatorUsageError, match="is a directory"):
        v.validate_file(str(tmp_path))


# ------------------------------------------------------------------------------------------------
# check_urls: a real HTTP server on 127.0.0.1
# ------------------------------------------------------------------------------------------------

LANDSCAPE = """
landscape:
  - category:
    name: App Definition and Development
    subcategories:
      - subcategory:
        name: Database
        items:
          - item:
            name: Not A Member Inc.
  - category:
    name: CNCF Members
    subcategories:
      - subcategory:
        name: Platinum
        items:
          - item:
            name: Yoyodyne (member)
          - item:
            name: Google
      - subcategory:
        name: Silver
        items:
          - item:
            name: Initech (supporter)
"""


class _Handler(BaseHTTPRequestHandler):
    seen = []

    def _answer(self, body):
        self.seen.append((self.command, self.path, self.headers.get("User-Agent")))
        routes = {"/ok": 200, "/logo.svg": 200, "/gone": 404, "/busy": 429, "/landscape.yml": 200, "/broken-landscape": 200}
        if self.path == "/head-refused":
            code = 405 if self.command == "HEAD" else 200
        elif self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/ok")
            self.end_headers()
            return
        else:
            code = routes.get(self.path, 500)
        payload = {"/landscape.yml": LANDSCAPE, "/broken-landscape": "landscape: [\n"}.get(self.path, "ok").encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        self._answer(False)

    def do_GET(self):  # noqa: N802
        self._answer(True)

    def log_message(self, *args):  # keep pytest output clean
        return


@pytest.fixture(scope="module")
def web():
    """A local web server; a proxy configured in the environment must not be used to reach it."""
    saved = dict((key, os.environ.get(key)) for key in ("no_proxy", "NO_PROXY"))
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_reachability_follows_validate_go(web):
    assert v.url_reachable(web + "/ok", 5) is None
    assert v.url_reachable(web + "/head-refused", 5) is None       # HEAD 405, then GET 200
    assert v.url_reachable(web + "/busy", 5) is None               # 429 counts as reachable
    assert v.url_reachable(web + "/moved", 5) is None              # redirects are followed
    assert v.url_reachable(web + "/gone", 5) == "status code 404"
    assert v.url_reachable("http://127.0.0.1:1/nothing-listens", 5)


def test_requests_carry_the_validator_user_agent(web):
    _Handler.seen[:] = []
    v.url_reachable(web + "/head-refused", 5)
    assert [(method, path) for method, path, dummy in _Handler.seen] == [("HEAD", "/head-refused"), ("GET", "/head-refused")]
    assert {agent for dummy, dummy2, agent in _Handler.seen} == {v.USER_AGENT}


def test_check_reachable_reports_each_location(web):
    urls = [("metadata.websiteUrl", web + "/ok", "metadata"), ("spec.operator.robust_controller", web + "/gone", "evidence"),
            ("spec.security.secure_accelerator_access", web + "/gone", "evidence")]
    errors = v.check_reachable(urls, 5)
    assert errors == [
        "spec.operator.robust_controller: evidence URL is not reachable: %s/gone (status code 404) "
        "(CNCF rule: URLs must be reachable: HEAD or GET answers below 400)" % web,
        "spec.security.secure_accelerator_access: evidence URL is not reachable: %s/gone (status code 404) "
        "(CNCF rule: URLs must be reachable: HEAD or GET answers below 400)" % web]


@pytest.mark.parametrize("vendor, error", [
    ("Yoyodyne", None), ("Google", None), ("Initech", None),
    ("Yoyodyne Inc.", 'metadata.vendorName: "Yoyodyne Inc." is not a CNCF member on the landscape; the closest member name is "Yoyodyne"'),
    ("Not A Member Inc.", "is not a CNCF member"),
])
def test_vendor_must_be_a_cncf_member(web, vendor, error):
    errors = v.check_vendor(vendor, web + "/landscape.yml", 5)
    assert (errors == []) if error is None else (len(errors) == 1 and error in errors[0])


def test_unreachable_landscape_is_an_error(web):
    for url, message in ((web + "/gone", "HTTP 404"), (web + "/broken-landscape", "failed to parse")):
        errors = v.check_vendor("Google", url, 5)
        assert len(errors) == 1 and message in errors[0] and errors[0].startswith("metadata.vendorName: cannot check the vendor")


def test_validate_file_with_check_urls(web, tmp_path):
    def edit(data):
        data["metadata"].update(websiteUrl=web + "/ok", documentationUrl=web + "/gone", productLogoUrl=web + "/logo.svg",
                                vendorName="Yoyodyne")
        data["metadata"].pop("k8sConformanceUrl")      # its pattern demands github.com: no network in tests
        for reqs in data["spec"].values():
            for req in reqs:
                req["evidence"] = [web + "/ok"]
        _req(data, "gang_scheduling")["evidence"] = [web + "/busy", web + "/gone"]
    product = tmp_path / "v1.35" / "yoyodyne"
    product.mkdir(parents=True)
    (product / "PRODUCT.yaml").write_text(_variant(edit))
    outcome = v.validate_file(str(product / "PRODUCT.yaml"), check_urls=True, timeout=5, landscape_url=web + "/landscape.yml")
    assert classify(outcome["errors"]) == {("metadata.k8sConformanceUrl", "RULE_META_REQUIRED"),
                                           ("metadata.documentationUrl", "RULE_URL"),
                                           ("spec.schedulingOrchestration.gang_scheduling", "RULE_URL")}
    assert outcome["checked_urls"] == 4     # /ok, /gone, /logo.svg, /busy: each fetched once
    assert not any("check_urls is false" in w for w in outcome["warnings"])


# ------------------------------------------------------------------------------------------------
# The module, through ansible itself
# ------------------------------------------------------------------------------------------------

def _adhoc(*args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-m", "k8s_ai.conformance.product_validate",
                           "-a", " ".join(args)], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"^localhost \| (\w+)! => (\{.*?^\})", proc.stdout, re.S | re.M) or \
        re.search(r"^localhost \| (\w+) => (\{.*?^\})", proc.stdout, re.S | re.M)
    assert match, proc.stdout + proc.stderr
    return proc.returncode, match.group(1), json.loads(match.group(2)), proc.stderr


def test_module_from_the_command_line(tmp_path):
    code, state, data, stderr = _adhoc("path=%s" % stage("v1.34/talos", tmp_path))
    assert code == 0 and state == "SUCCESS" and data["valid"] is False and data["changed"] is False
    assert classify(data["errors"]) == set(KNOWN_BROKEN["v1.34/talos"][0])
    assert "check_urls is false" in stderr                     # ad-hoc runs show the module's warnings

    code, state, data, dummy = _adhoc("path=%s" % os.path.join(PRODUCTS, "v1.36", "aks", "PRODUCT.yaml"))
    assert code == 0 and data["valid"] is True and data["version"] == "1.36" and data["errors"] == []


def test_module_fails_only_when_it_cannot_validate(tmp_path):
    code, state, data, dummy = _adhoc("path=%s" % (tmp_path / "v1.35" / "none" / "PRODUCT.yaml"))
    assert code != 0 and state == "FAILED" and "does not exist" in data["msg"]
    code, state, data, dummy = _adhoc("path=%s" % os.path.join(PRODUCTS, "v1.36", "aks", "PRODUCT.yaml"), "version=latest")
    assert code != 0 and "quoted string" in data["msg"]
    code, state, data, dummy = _adhoc("path=x", "colour=red")
    assert code != 0 and "colour" in data["msg"]
