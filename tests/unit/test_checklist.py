"""The shipped CNCF checklists and the choice of checklist for a cluster version."""
from __future__ import annotations

import filecmp
import os

import pytest

from ansible_collections.k8s_ai.conformance.plugins.module_utils import checklist as cl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPSTREAM = os.path.join(ROOT, "..", "shared", "fixtures", "upstream", "checklists", "cncf-k8s-ai-conformance")
SHIPPED = ("1.33", "1.34", "1.35", "1.36")


@pytest.mark.parametrize("version", SHIPPED)
def test_shipped_checklist_is_byte_identical_to_cncf(version):
    name = "AIConformance-%s.yaml" % version
    shipped = os.path.join(ROOT, "data", "checklists", name)
    assert filecmp.cmp(shipped, os.path.join(UPSTREAM, name), shallow=False)


def test_action_plugins_find_the_shipped_checklists():
    # DEFAULT_DIR is resolved from module_utils/, which the action plugins import on the controller.
    assert os.path.samefile(cl.DEFAULT_DIR, os.path.join(ROOT, "data", "checklists"))
    assert cl.available_versions() == list(SHIPPED)


def test_every_upstream_checklist_is_shipped():
    upstream = sorted(name for name in os.listdir(UPSTREAM) if name.startswith("AIConformance-"))
    assert upstream == ["AIConformance-%s.yaml" % version for version in SHIPPED]


# ------------------------------------------------------------------------------------------------
# Requirements come from the data
# ------------------------------------------------------------------------------------------------

def test_requirements_carry_the_exact_strings_of_the_file():
    checklist = cl.load_checklist("1.35")
    req = checklist.by_id["gang_scheduling"]
    assert req.category == "schedulingOrchestration" and req.level == "MUST"
    assert req.description.startswith("The platform must allow for the installation and successful operation of at least one gang")
    assert ('description: "%s"' % req.description) in checklist.text


def test_categories_keep_the_template_order():
    order = ["accelerators", "networking", "schedulingOrchestration", "observability", "security", "operator"]
    for version in SHIPPED:
        assert [name for name, dummy in cl.load_checklist(version).categories] == order


def test_id_sets_differ_per_version_as_cncf_defines_them():
    ids = dict((version, set(cl.load_checklist(version).ids)) for version in SHIPPED)
    core = {"ai_inference", "gang_scheduling", "cluster_autoscaling", "pod_autoscaling", "accelerator_metrics",
            "ai_service_metrics", "secure_accelerator_access", "robust_controller"}
    accelerator_shoulds = {"driver_runtime_management", "gpu_sharing", "virtualized_accelerator"}
    networking_shoulds = {"advanced_inference_ingress", "high_performance_networking", "disaggregated_inference"}
    assert ids["1.33"] == ids["1.34"] == core | {"dra_support"}
    assert ids["1.35"] == core | {"dra_support"} | accelerator_shoulds
    assert ids["1.36"] == core | accelerator_shoulds | networking_shoulds      # dra_support is gone
    networking = [req.id for req in cl.load_checklist("1.36").requirements if req.category == "networking"]
    assert networking == ["ai_inference", "advanced_inference_ingress", "high_performance_networking", "disaggregated_inference"]


def test_dra_support_level_changes_from_should_to_must():
    assert cl.load_checklist("1.33").by_id["dra_support"].level == "SHOULD"
    assert cl.load_checklist("1.34").by_id["dra_support"].level == "MUST"
    assert cl.load_checklist("1.35").by_id["dra_support"].level == "MUST"


def test_only_the_autoscaling_musts_are_conditional():
    for version in SHIPPED:
        conditional = [req.id for req in cl.load_checklist(version).requirements if req.conditional]
        assert conditional == ["cluster_autoscaling", "pod_autoscaling"]


def test_metadata_template_and_k8s_conformance_url():
    assert cl.load_checklist("1.35").metadata_keys == list(cl.METADATA_FIELDS)
    for version in ("1.33", "1.34", "1.36"):
        checklist = cl.load_checklist(version)
        assert "k8sConformanceUrl" not in [key for key, dummy in checklist.metadata]   # the template lacks it ...
        assert checklist.metadata_keys[-1] == "k8sConformanceUrl"                     # ... we add it anyway
        assert checklist.placeholder("k8sConformanceUrl").endswith("/v%s/product-name]" % version)
    assert cl.load_checklist("1.36").placeholder("kubernetesVersion") == "v1.36"
    assert cl.load_checklist("1.33").placeholder("productLogoUrl") == "[Documentation URL]"   # the template's own bug


def test_header_is_the_template_comment_block():
    header = cl.load_checklist("1.33").header
    assert header[0] == "# Kubernetes AI Conformance Checklist"
    assert len(header) == 3 and all(line.startswith("#") for line in header)


def test_missing_version_names_the_supported_ones():
    with pytest.raises(cl.ChecklistError, match="supported versions: 1.33, 1.34, 1.35, 1.36"):
        cl.load_checklist("1.32")


@pytest.mark.parametrize("text, message", [
    ("metadata: [", "not YAML"),
    ("- a\n- b\n", "must be a mapping"),
    ("metadata: {}\n", "needs 'metadata' and 'spec'"),
    ("metadata: {}\nspec:\n  accelerators: {id: x}\n", "must be a list"),
    ("metadata: {}\nspec:\n  accelerators:\n    - id: x\n      level: MAY\n", "MUST/SHOULD"),
])
def test_parse_refuses_what_is_not_a_checklist(text, message):
    with pytest.raises(cl.ChecklistError, match=message):
        cl.parse_checklist(text, "9.9")


def test_available_versions_reads_the_directory(tmp_path):
    for name in ("AIConformance-1.4.yaml", "AIConformance-1.35.yaml", "README.md", "AIConformance-x.yaml"):
        (tmp_path / name).write_text("")
    assert cl.available_versions(str(tmp_path)) == ["1.4", "1.35"]     # numeric order, not text order
    (tmp_path / "empty").mkdir()
    with pytest.raises(cl.ChecklistError, match="no AIConformance-<X.Y>.yaml checklist in"):
        cl.available_versions(str(tmp_path / "empty"))
    with pytest.raises(cl.ChecklistError, match="cannot read the checklist directory"):
        cl.available_versions(str(tmp_path / "README.md"))


# ------------------------------------------------------------------------------------------------
# Version selection
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("git_version, expected", [
    ("v1.33.5-gke.1", "1.33"),
    ("v1.34.0+k3s1", "1.34"),
    ("v1.35.2", "1.35"),
    ("v1.36.0-rc.1", "1.36"),
    ("v1.34.1-eks-3025e55", "1.34"),
    (" 1.35.0 ", "1.35"),
])
def test_cluster_minor_selects_its_checklist(git_version, expected):
    assert cl.select_version(SHIPPED, cluster_version=git_version) == (expected, [])


def test_newer_cluster_needs_an_explicit_override():
    with pytest.raises(cl.ChecklistError) as caught:
        cl.select_version(SHIPPED, cluster_version="v1.38.1")
    assert "1.38" in str(caught.value) and "newest checklist shipped (1.36)" in str(caught.value)
    assert 'conformance_version: "1.36"' in str(caught.value) and "conform_version" in str(caught.value)
    version, warnings = cl.select_version(SHIPPED, cluster_version="v1.38.1", conformance_version="1.36")
    assert version == "1.36" and len(warnings) == 1 and "overrides the cluster's version" in warnings[0]


def test_older_cluster_is_an_error_naming_the_supported_versions():
    with pytest.raises(cl.ChecklistError) as caught:
        cl.select_version(SHIPPED, cluster_version="v1.32.9")
    assert "1.32" in str(caught.value) and "supported versions: 1.33, 1.34, 1.35, 1.36" in str(caught.value)


@pytest.mark.parametrize("garbage", ["latest", "v1", "1.x.3", "v1.33.5 gke", "{{ version }}"])
def test_garbage_cluster_version_is_a_clear_error(garbage):
    with pytest.raises(cl.ChecklistError, match="expected a gitVersion such as v1.34.2"):
        cl.select_version(SHIPPED, cluster_version=garbage)


@pytest.mark.parametrize("override", ["1.35", "v1.35", " v1.35 "])
def test_conformance_version_override_wins(override):
    assert cl.select_version(SHIPPED, cluster_version="v1.35.1", conformance_version=override) == ("1.35", [])
    assert cl.select_version(SHIPPED, conformance_version=override) == ("1.35", [])


def test_override_differing_from_the_cluster_warns():
    version, warnings = cl.select_version(SHIPPED, cluster_version="v1.34.3", conformance_version="v1.35")
    assert version == "1.35"
    assert len(warnings) == 1 and "overrides the cluster's version v1.34.3" in warnings[0]


@pytest.mark.parametrize("override, message", [
    ("1.32", "no checklist in this collection; supported versions: 1.33, 1.34, 1.35, 1.36"),
    ("1.3", "no checklist in this collection"),          # what an unquoted 1.30 becomes
    ("v1.35.2", "use a quoted string such as \"1.35\""),
    ("latest", "use a quoted string"),
])
def test_bad_override_is_a_clear_error(override, message):
    with pytest.raises(cl.ChecklistError, match=message.replace(".", r"\.").replace("(", r"\(")):
        cl.select_version(SHIPPED, cluster_version="v1.35.0", conformance_version=override)


def test_without_any_version_the_error_says_what_to_pass():
    with pytest.raises(cl.ChecklistError, match="cluster_version.*conformance_version"):
        cl.select_version(SHIPPED)


def test_snake_case_matches_validate_go():
    assert [cl.snake_case(field) for field in cl.METADATA_FIELDS] == [
        "kubernetes_version", "platform_name", "platform_version", "vendor_name", "website_url", "repo_url",
        "documentation_url", "product_logo_url", "description", "contact_email_address", "k8s_conformance_url"]
