"""product_report: PRODUCT.yaml, evidence files, junit.xml and SUMMARY.md from results; re-runs and overrides."""
from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from ansible_collections.k8s_ai.conformance.plugins.module_utils import _report_files as rf
from ansible_collections.k8s_ai.conformance.plugins.module_utils import checklist as cl
from ansible_collections.k8s_ai.conformance.plugins.module_utils import report as rp
from ansible_collections.k8s_ai.conformance.plugins.module_utils import validator
from ansible_collections.k8s_ai.conformance.plugins.module_utils.result import make_result

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERSIONS = ("1.33", "1.34", "1.35", "1.36")

METADATA = {
    "platformName": "Turbo Encabulator",
    "platform_version": "1.10",                      # snake_case alias, and a version YAML would read as 1.1
    "vendorName": "Yoyodyne",
    "website_url": "https://yoyo.dyne/turbo-encabulator",
    "repoUrl": "https://github.com/yoyodyne/turbo-encabulator",
    "documentationUrl": "https://yoyo.dyne/turbo-encabulator/docs",
    "product_logo_url": "https://yoyo.dyne/assets/turbo-encabulator.svg",
    "description": "The Yoyodyne Turbo Encabulator: Kubernetes for AI workloads, tested on every release.",
    "contactEmailAddress": "conformance@yoyo.dyne",
}


def metadata_for(version):
    return dict(METADATA, k8s_conformance_url="https://github.com/cncf/k8s-conformance/tree/master/v%s/turbo-encabulator" % version)


def result(rid, status="Implemented", notes="", summary=None):
    return make_result(
        rid, status,
        findings=[{"name": "API served", "passed": True, "detail": "resource.k8s.io/v1"},
                  {"name": "probe | data plane", "passed": status == "Implemented", "detail": "200 of 200 requests\nrouted"},
                  {"name": "same-node isolation", "passed": None, "detail": "skipped: no node with 2 GPUs"}],
        evidence=[{"title": "served versions", "kind": "yaml", "content": {"versions": ["v1"], "preferred": "v1"}},
                  {"title": "probe log", "kind": "text", "content": "RESULT: ACCELERATOR_FOUND\n```inner fence```"},
                  {"title": "tally", "kind": "table", "content": [{"backend": "v1", "requests": 160}, {"backend": "v2", "requests": 40}]},
                  {"title": "status", "kind": "json", "content": {"conditions": [{"type": "Accepted", "status": "True"}]}}],
        notes=notes, summary=summary or "%s verified on the simulated cluster" % rid)


def full_results(version):
    return [result(rid) for rid in cl.load_checklist(version).ids]


def run(tmp_path, check_mode=False, **options):
    base = {"output_dir": str(tmp_path), "conformance_version": "1.35", "metadata": metadata_for(options.get("conformance_version", "1.35")),
            "results": [], "junit": True, "summary": True, "backup": True, "metadata_overwrite": False,
            "policy": {"conditional_must_not_applicable": "na"}}
    base.update(options)
    return rf.run_report(base, check_mode=check_mode)


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def spec_entry(data, rid):
    return [req for reqs in data["spec"].values() for req in reqs if req["id"] == rid][0]


# ------------------------------------------------------------------------------------------------
# A full report per version
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_full_results_make_a_valid_submission(version, tmp_path):
    out = run(tmp_path, conformance_version=version, results=full_results(version))
    product = tmp_path / ("v%s" % version) / "turbo-encabulator" / "PRODUCT.yaml"
    assert out["path"] == str(product) and out["version"] == version and out["changed"] is True
    assert out["blocking"] == [] and out["validation"]["valid"] is True, out["validation"]["errors"]
    # The validator run on the file as written, independently of the report writer.
    assert validator.validate_file(str(product))["valid"]
    ids = cl.load_checklist(version).ids
    assert out["evidence_files"] == [str(product.parent / "evidence" / ("%s.md" % rid)) for rid in ids]
    assert out["counts"] == {"Implemented": len(ids), "Partially Implemented": 0, "Not Implemented": 0, "N/A": 0, "blank": 0}
    data = load(str(product))
    for rid in ids:
        assert spec_entry(data, rid)["evidence"] == ["evidence/%s.md" % rid]


@pytest.mark.parametrize("version", VERSIONS)
def test_layout_and_strings_are_the_checklists(version, tmp_path):
    out = run(tmp_path, conformance_version=version, results=full_results(version)[:2])
    with open(os.path.join(ROOT, "data", "checklists", "AIConformance-%s.yaml" % version)) as handle:
        template_text = handle.read()
    template = yaml.safe_load(template_text)
    with open(out["path"]) as handle:
        written_text = handle.read()
    written = yaml.safe_load(written_text)
    # the template's header comment lines, then metadata in template order (+ k8sConformanceUrl), then spec
    header = template_text.splitlines()[:3]
    assert written_text.splitlines()[:4] == header + [""]
    assert list(written) == ["metadata", "spec"]
    expected_keys = list(template["metadata"]) + ([] if "k8sConformanceUrl" in template["metadata"] else ["k8sConformanceUrl"])
    assert list(written["metadata"]) == expected_keys
    assert list(written["spec"]) == list(template["spec"])
    for category, requirements in template["spec"].items():
        mine = written["spec"][category]
        assert [(r["id"], r["description"], r["level"]) for r in mine] == \
            [(r["id"], r["description"], r["level"]) for r in requirements]      # byte-identical strings, same order
        assert all(list(r) == ["id", "description", "level", "status", "evidence", "notes"] for r in mine)
        assert all(isinstance(r["evidence"], list) for r in mine)


def test_every_scalar_is_quoted(tmp_path):
    out = run(tmp_path, results=full_results("1.35"))
    with open(out["path"]) as handle:
        text = handle.read()
    for line in text.splitlines():
        if line.startswith("#") or not line.strip() or line.rstrip().endswith(":") or line.rstrip().endswith(": []"):
            continue
        value = re.sub(r"^\s*(- )?(\w+: )?", "", line)
        assert value.startswith('"') and value.endswith('"'), line
    data = load(out["path"])
    assert data["metadata"]["platformVersion"] == "1.10" and data["metadata"]["kubernetesVersion"] == "v1.35"
    assert all(isinstance(value, str) for value in data["metadata"].values())


def test_missing_results_are_blank_never_invented(tmp_path):
    out = run(tmp_path, results=[result("gang_scheduling")])
    data = load(out["path"])
    assert spec_entry(data, "gpu_sharing") == {"id": "gpu_sharing", "description": cl.load_checklist("1.35").by_id["gpu_sharing"].description,
                                               "level": "SHOULD", "status": "", "evidence": [], "notes": ""}
    assert spec_entry(data, "ai_inference")["status"] == ""
    assert any(message.startswith("ai_inference (MUST) has no result") for message in out["blocking"])
    assert not any("gpu_sharing" in message for message in out["blocking"])    # a blank SHOULD is legal
    assert out["counts"]["blank"] == 11 and out["counts"]["Implemented"] == 1
    assert [req["source"] for req in out["requirements"]].count("missing") == 11


def test_version_from_the_cluster_and_results_of_other_versions(tmp_path):
    out = run(tmp_path, conformance_version=None, cluster_version="v1.36.1+k3s1", metadata=metadata_for("1.36"),
              results=[result("dra_support"), result("gang_scheduling")])
    assert out["version"] == "1.36" and out["path"].endswith("/v1.36/turbo-encabulator/PRODUCT.yaml")
    assert any("dra_support is not a requirement of the 1.36 checklist" in w for w in out["warnings"])
    assert "dra_support" not in open(out["path"]).read()
    assert not os.path.exists(os.path.join(os.path.dirname(out["path"]), "evidence", "dra_support.md"))


# ------------------------------------------------------------------------------------------------
# Evidence, JUnit, summary
# ------------------------------------------------------------------------------------------------

def test_evidence_file_content(tmp_path):
    long_log = "\n".join("line %d" % index for index in range(500))
    res = result("secure_accelerator_access", "Partially Implemented", notes="Same-node isolation not shown.",
                 summary="device plugin isolates GPUs; no 2-GPU node to test same-node isolation")
    res["evidence"].append({"title": "kubelet log", "kind": "text", "content": long_log})
    out = run(tmp_path, cluster_version="v1.35.2-gke.1", results=[res])
    path = os.path.join(os.path.dirname(out["path"]), "evidence", "secure_accelerator_access.md")
    with open(path) as handle:
        text = handle.read()
    req = cl.load_checklist("1.35").by_id["secure_accelerator_access"]
    assert text.startswith("# secure_accelerator_access: Partially Implemented\n")
    assert "> %s" % req.description in text and "| Requirement | `secure_accelerator_access` (security), MUST |" in text
    assert "**Partially Implemented**: device plugin isolates GPUs" in text
    assert "| probe \\| data plane | **failed** | 200 of 200 requests<br>routed |" in text
    assert "| same-node isolation | skipped | skipped: no node with 2 GPUs |" in text
    assert "```yaml\nversions:\n- v1\npreferred: v1\n```" in text
    assert "````text\nRESULT: ACCELERATOR_FOUND\n```inner fence```\n````" in text     # a longer fence around backticks
    assert '```json\n{\n  "conditions": [' in text
    assert "| backend | requests |\n| --- | --- |\n| v1 | 160 |" in text
    assert "line 199\n```" in text and "line 200\n" not in text
    assert "_Trimmed: the excerpt above shows the first 200 of 500 lines" in text
    assert "## Notes\n\nSame-node isolation not shown." in text
    assert "| Checked by | k8s_ai.conformance %s, mode active |" % rf.collection_version() in text
    assert "| Cluster version | v1.35.2-gke.1 |" in text
    assert re.search(r"^\| Date \| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \|$", text, re.M)
    assert rf.collection_version() not in ("", "unknown")


def test_table_evidence_shapes(tmp_path):
    res = result("gang_scheduling")
    res["evidence"] = [{"title": "rows", "kind": "table", "content": [["node", "gpus"], ["gpu-1", 8], ["gpu-2", "a|b"]]},
                       {"title": "preformatted", "kind": "table", "content": "NAME   GPUS\ngpu-1  8"},
                       {"title": "not rows", "kind": "table", "content": [1, 2]}]
    out = run(tmp_path, results=[res])
    with open(out["evidence_files"][0]) as handle:
        text = handle.read()
    assert "### rows\n\n| node | gpus |\n| --- | --- |\n| gpu-1 | 8 |\n| gpu-2 | a\\|b |\n" in text
    assert "### preformatted\n\n```text\nNAME   GPUS\ngpu-1  8\n```" in text
    assert "### not rows\n\n```text\n[\n  1,\n  2\n]\n```" in text


def test_junit_has_one_testcase_per_requirement(tmp_path):
    results = [result("gang_scheduling"), result("robust_controller", "Partially Implemented", notes="webhook missing"),
               result("ai_inference", "Not Implemented"), result("gpu_sharing", "Not Implemented"),
               result("cluster_autoscaling", "N/A", notes="Fixed-size on-premises cluster without node groups.")]
    out = run(tmp_path, results=results)
    suites = ET.parse(out["junit_path"]).getroot()
    suite = suites.find("testsuite")
    cases = dict((case.get("name"), case) for case in suite.findall("testcase"))
    checklist = cl.load_checklist("1.35")
    assert list(cases) == checklist.ids
    assert all(cases[req.id].get("classname") == req.category for req in checklist.requirements)
    assert {name for name, case in cases.items() if case.find("failure") is not None} == {"robust_controller", "ai_inference"}
    assert cases["robust_controller"].find("failure").get("type") == "Partially Implemented"
    skipped = {name for name, case in cases.items() if case.find("skipped") is not None}
    assert skipped == set(checklist.ids) - {"gang_scheduling", "robust_controller", "ai_inference", "gpu_sharing"}
    assert cases["gpu_sharing"].find("failure") is None          # a SHOULD Not Implemented does not fail
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("12", "2", "8")
    assert suites.get("tests") == "12" and suites.get("failures") == "2"
    assert "robust_controller: Partially Implemented (verified)" in cases["robust_controller"].find("system-out").text
    assert "blocked" in suite.find("system-out").text


def test_summary_lists_requirements_sources_and_fixes(tmp_path):
    out = run(tmp_path, results=[result("gang_scheduling"), result("robust_controller", "Partially Implemented")],
              metadata=dict(metadata_for("1.35"), vendorName="[Vendor Name]"))
    with open(out["summary_path"]) as handle:
        text = handle.read()
    assert text.startswith("# AI Conformance v1.35: Turbo Encabulator\n")
    assert "| gang_scheduling | MUST | Implemented | verified | gang_scheduling verified on the simulated cluster |" in text
    assert "| gpu_sharing | SHOULD | (blank) | missing | no result: the check did not run |" in text
    assert "**CNCF submission: blocked," in text
    assert "- metadata.vendorName is not set: pass metadata.vendorName (the legal entity" in text
    assert "- robust_controller (MUST) is \"Partially Implemented\": this submission will not pass CNCF validation" in text
    assert out["blocking"][0].startswith("metadata.vendorName is not set")


# ------------------------------------------------------------------------------------------------
# Policy for conditional MUSTs, and the result model
# ------------------------------------------------------------------------------------------------

NA_AUTOSCALING = "Fixed-size on-premises platform: nodes are bare-metal servers, there are no node groups to scale"


def test_na_on_a_must_is_reported_as_blocking_by_default(tmp_path):
    out = run(tmp_path, results=full_results("1.35")[:6] + [result("cluster_autoscaling", "N/A", notes=NA_AUTOSCALING)]
              + full_results("1.35")[7:])
    assert spec_entry(load(out["path"]), "cluster_autoscaling")["status"] == "N/A"      # never silently upgraded
    assert len(out["blocking"]) == 1
    message = out["blocking"][0]
    assert message.startswith('cluster_autoscaling (MUST) is "N/A": this submission will not pass CNCF validation')
    assert "policy.conditional_must_not_applicable: implemented_with_note" in message
    assert out["validation"]["errors"] == ['spec.schedulingOrchestration.cluster_autoscaling: status "N/A" is not allowed '
                                           'for a MUST requirement (CNCF rule: every MUST must be Implemented)']


def test_implemented_with_note_policy_writes_the_justification(tmp_path):
    results = [r for r in full_results("1.35") if r["id"] != "cluster_autoscaling"]
    out = run(tmp_path, results=results + [result("cluster_autoscaling", "N/A", notes=NA_AUTOSCALING)],
              policy={"conditional_must_not_applicable": "implemented_with_note"})
    entry = spec_entry(load(out["path"]), "cluster_autoscaling")
    assert entry["status"] == "Implemented"
    assert entry["notes"].startswith("Not applicable: %s. Written as Implemented under the policy implemented_with_note" % NA_AUTOSCALING)
    assert 'conditional ("If the platform provides a cluster autoscaler or an equivalent mechanism")' in entry["notes"]
    assert out["blocking"] == [] and out["validation"]["valid"]
    with open(out["summary_path"]) as handle:
        summary = handle.read()
    assert "## Written as Implemented by policy (honest verdict N/A)" in summary
    assert "| cluster_autoscaling | MUST | Implemented | verified | N/A, written as Implemented by policy:" in summary
    with open(os.path.join(os.path.dirname(out["path"]), "evidence", "cluster_autoscaling.md")) as handle:
        evidence = handle.read()
    assert "**N/A**" in evidence and "PRODUCT.yaml says **Implemented** (policy implemented_with_note)." in evidence


def test_policy_never_upgrades_other_verdicts(tmp_path):
    results = [result("cluster_autoscaling", "Partially Implemented", notes="scale-up only"),
               result("ai_inference", "N/A", notes="No inference services on this platform.")]
    out = run(tmp_path, results=results, policy={"conditional_must_not_applicable": "implemented_with_note"})
    data = load(out["path"])
    assert spec_entry(data, "cluster_autoscaling")["status"] == "Partially Implemented"
    assert spec_entry(data, "ai_inference")["status"] == "N/A"          # not a conditional MUST
    assert any(m.startswith('ai_inference (MUST) is "N/A"') and "N/A is never accepted for this MUST" in m for m in out["blocking"])


def test_na_without_notes_is_refused_by_the_result_model(tmp_path):
    bad = dict(result("cluster_autoscaling"), status="N/A", notes="")
    with pytest.raises(rp.ReportError, match=r"results\[0\] is not a valid result: cluster_autoscaling: N/A needs a justification"):
        run(tmp_path, results=[bad])
    assert not os.path.exists(str(tmp_path / "v1.35"))


@pytest.mark.parametrize("results, message", [
    ([{"id": "gang_scheduling", "status": "Done"}], "status 'Done' is not one of"),
    ("gang_scheduling", "results must be a list of results or a mapping"),
    ([["gang_scheduling"]], r"results\[0\] must be a result mapping"),
    ([{"status": "Implemented"}], "needs a requirement id"),
    ({"gang_scheduling": {"id": "robust_controller", "status": "Implemented"}}, "results.gang_scheduling holds the result of robust_controller"),
])
def test_bad_results_are_clear_errors(tmp_path, results, message):
    with pytest.raises(rp.ReportError, match=message):
        run(tmp_path, results=results)


def test_results_as_a_mapping_and_registered_task_results(tmp_path):
    registered = dict(result("gang_scheduling"), changed=False, failed=False, invocation={"module_args": {}})
    out = run(tmp_path, results={"gang_scheduling": registered, "robust_controller": {"status": "Implemented"},
                                 "gpu_sharing": {"skipped": True, "changed": False}})
    data = load(out["path"])
    assert spec_entry(data, "gang_scheduling")["status"] == "Implemented"
    assert spec_entry(data, "robust_controller")["status"] == "Implemented"     # id taken from the key
    assert any("results.gpu_sharing is a skipped task's result" in w for w in out["warnings"])
    with pytest.raises(rp.ReportError, match="a second result for gang_scheduling"):
        run(tmp_path, results=[result("gang_scheduling"), result("gang_scheduling")])


# ------------------------------------------------------------------------------------------------
# Metadata and paths
# ------------------------------------------------------------------------------------------------

def test_metadata_aliases_are_written_in_camel_case(tmp_path):
    out = run(tmp_path)
    metadata = load(out["path"])["metadata"]
    assert metadata["websiteUrl"] == METADATA["website_url"] and "website_url" not in metadata
    assert metadata["k8sConformanceUrl"].endswith("/v1.35/turbo-encabulator")


@pytest.mark.parametrize("metadata, message", [
    ({"platformName": "X", "colour": "red"}, "metadata.colour is not a PRODUCT.yaml metadata field"),
    ({"platformName": "X", "vendorName": "A", "vendor_name": "B"}, "metadata sets vendorName twice"),
    ({"platformName": "X", "platformVersion": 1.1}, r"metadata.platformVersion must be a string, got 1.1: quote it"),
    ({"platformName": "X", "platformVersion": True}, "must be a string"),
    ("platformName=X", "metadata must be a mapping"),
])
def test_bad_metadata_is_a_clear_error(tmp_path, metadata, message):
    with pytest.raises(rp.ReportError, match=message):
        run(tmp_path, metadata=metadata)


def test_unset_repo_url_is_empty_not_a_placeholder(tmp_path):
    metadata = dict(metadata_for("1.35"))
    metadata.pop("repoUrl")
    out = run(tmp_path, metadata=metadata, results=full_results("1.35"))
    assert load(out["path"])["metadata"]["repoUrl"] == "" and out["validation"]["valid"]    # optional; "[...]" is refused


def test_missing_metadata_is_blocking_and_keeps_the_placeholder(tmp_path):
    out = run(tmp_path, metadata={"platformName": "Turbo"}, results=full_results("1.35"))
    assert load(out["path"])["metadata"]["vendorName"] == "[Vendor Name]"
    blocked = [m.split(" ")[0] for m in out["blocking"]]
    fields = ("platformVersion", "vendorName", "websiteUrl", "documentationUrl", "productLogoUrl", "description",
              "contactEmailAddress", "k8sConformanceUrl")
    assert blocked == ["metadata.%s" % key for key in fields]


@pytest.mark.parametrize("name, expected", [("Turbo Encabulator 2!", "turbo-encabulator-2"), ("OKE", "oke"), ("a/../b", "a-..-b")])
def test_platform_dir_is_derived_from_the_platform_name(tmp_path, name, expected):
    out = run(tmp_path, metadata={"platformName": name})
    assert os.path.basename(os.path.dirname(out["path"])) == expected


@pytest.mark.parametrize("platform_dir", ["../escape", "a/b", ".hidden", ".."])
def test_bad_platform_dir(tmp_path, platform_dir):
    with pytest.raises(rp.ReportError, match="must be one directory name"):
        run(tmp_path, platform_dir=platform_dir)


def test_platform_dir_or_name_is_required(tmp_path):
    with pytest.raises(rp.ReportError, match="set platform_dir"):
        run(tmp_path, metadata={})


# ------------------------------------------------------------------------------------------------
# Re-runs: idempotence, backups, atomic writes, what a person wrote
# ------------------------------------------------------------------------------------------------

def _tree(directory):
    state = {}
    for dirpath, dummy, files in os.walk(str(directory)):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                state[os.path.relpath(path, str(directory))] = (handle.read(), os.stat(path).st_mtime_ns)
    return state


def test_second_run_with_the_same_inputs_changes_nothing(tmp_path):
    first = run(tmp_path, cluster_version="v1.35.2", results=full_results("1.35"))
    before = _tree(tmp_path)
    second = run(tmp_path, cluster_version="v1.35.2", results=full_results("1.35"))
    assert first["changed"] is True and second["changed"] is False
    assert second["changed_files"] == [] and second["backup_file"] is None
    assert _tree(tmp_path) == before                  # same bytes, not even rewritten (mtimes unchanged)


def test_backup_is_made_when_product_yaml_changes(tmp_path):
    first = run(tmp_path, results=[result("gang_scheduling", "Partially Implemented")])
    with open(first["path"]) as handle:
        old = handle.read()
    second = run(tmp_path, results=[result("gang_scheduling")])
    assert second["changed"] and re.search(r"/PRODUCT\.yaml\.\d{8}T\d{6}Z(\.\d+)?\.bak$", second["backup_file"])
    with open(second["backup_file"]) as handle:
        assert handle.read() == old
    third = run(tmp_path, results=[result("gang_scheduling", "Not Implemented")], backup=False)
    assert third["changed"] and third["backup_file"] is None
    assert len([n for n in os.listdir(os.path.dirname(first["path"])) if n.endswith(".bak")]) == 1


def test_writes_leave_no_temporary_files(tmp_path):
    run(tmp_path, results=full_results("1.35"))
    run(tmp_path, results=[result("gang_scheduling", "Partially Implemented")])
    leftovers = [name for dirpath, dummy, files in os.walk(str(tmp_path)) for name in files if name.endswith(".tmp")]
    assert leftovers == []


def test_atomic_write_cleans_up_when_replace_fails(tmp_path):
    target = tmp_path / "PRODUCT.yaml"
    target.mkdir()                                    # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        rf.atomic_write(str(target), "metadata: {}\n")
    assert sorted(os.listdir(str(tmp_path))) == ["PRODUCT.yaml"]
    rf.atomic_write(str(tmp_path / "other.yaml"), "a: 1\n")
    assert (tmp_path / "other.yaml").read_text() == "a: 1\n"


def test_check_mode_writes_nothing(tmp_path):
    out = run(tmp_path, check_mode=True, results=full_results("1.35"))
    assert out["changed"] is True and not os.path.exists(str(tmp_path / "v1.35"))
    assert out["validation"]["valid"]                  # evidence files it would write count as present
    run(tmp_path, results=full_results("1.35"))
    again = run(tmp_path, check_mode=True, results=full_results("1.35")[:3])
    assert again["changed"] is True and again["backup_file"] is None
    assert load(again["path"])["spec"]["operator"][0]["status"] == "Implemented"     # untouched


def _edit(path, edit):
    data = load(path)
    edit(data)
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle, sort_keys=False, width=1000)


def test_rerun_keeps_what_a_person_wrote(tmp_path):
    first = run(tmp_path, metadata={"platformName": "Turbo", "vendorName": ""},
                results=[result("gang_scheduling", "Partially Implemented"), result("robust_controller")])

    def person(data):
        data["metadata"]["vendorName"] = "Yoyodyne"
        data["metadata"]["website_url"] = data["metadata"].pop("websiteUrl")      # they may write snake_case
        data["metadata"]["website_url"] = "https://yoyo.dyne/"
        data["metadata"]["releaseTrain"] = "2026.1"                               # not a CNCF field: kept
        spec_entry(data, "gang_scheduling")["evidence"].insert(0, "https://yoyo.dyne/kueue-test.html")
        spec_entry(data, "robust_controller").update(status="Implemented", evidence=["https://yoyo.dyne/kuberay.html"],
                                                     notes="[manual] Verified with webhooks on the production fleet.")
    _edit(first["path"], person)

    second = run(tmp_path, metadata={"platformName": "Turbo", "vendorName": "[Vendor Name]", "websiteUrl": "https://other.example/"},
                 results=[result("gang_scheduling"), result("robust_controller", "Not Implemented")])
    data = load(second["path"])
    assert data["metadata"]["vendorName"] == "Yoyodyne"                     # a filled value beats a placeholder input
    assert data["metadata"]["websiteUrl"] == "https://yoyo.dyne/"           # the person's file wins a conflict ...
    assert any("metadata.websiteUrl: kept 'https://yoyo.dyne/'" in w for w in second["warnings"])
    assert data["metadata"]["releaseTrain"] == "2026.1" and "website_url" not in data["metadata"]
    gang = spec_entry(data, "gang_scheduling")
    assert gang["status"] == "Implemented"                                  # our result is refreshed
    assert gang["evidence"] == ["https://yoyo.dyne/kueue-test.html", "evidence/gang_scheduling.md"]   # theirs first
    assert spec_entry(data, "robust_controller") == {                     # kept exactly as written
        "id": "robust_controller", "description": cl.load_checklist("1.35").by_id["robust_controller"].description,
        "level": "MUST", "status": "Implemented", "evidence": ["https://yoyo.dyne/kuberay.html"],
        "notes": "[manual] Verified with webhooks on the production fleet."}
    assert {r["id"]: r["source"] for r in second["requirements"]}["robust_controller"] == "manual"
    assert second["backup_file"]

    third = run(tmp_path, metadata={"websiteUrl": "https://other.example/", "platformName": "Turbo"}, metadata_overwrite=True,
                results=[result("gang_scheduling"), result("robust_controller", "Not Implemented")])
    assert load(third["path"])["metadata"]["websiteUrl"] == "https://other.example/"      # ... unless told otherwise


def test_overrides_file(tmp_path):
    first = run(tmp_path, results=full_results("1.35"))
    product_dir = os.path.dirname(first["path"])
    with open(os.path.join(product_dir, "overrides.yaml"), "w") as handle:
        handle.write(
            "overrides:\n"
            "  cluster_autoscaling:\n"
            "    status: Implemented\n"
            "    evidence: [https://yoyo.dyne/autoscaling-run.html]\n"
            "    notes: Scale-up and scale-down verified on the production fleet.\n"
            "    reason: The simulated cluster cannot add nodes (ops ticket 1234)\n"
            "  pod_autoscaling:\n"
            "    status: Partially Implemented\n"
            "    notes: Custom metrics adapter not installed yet.\n"
            "    reason: Known gap, tracked in ops ticket 1240\n")
    out = run(tmp_path, results=full_results("1.35"))
    data = load(out["path"])
    autoscaling = spec_entry(data, "cluster_autoscaling")
    assert autoscaling["status"] == "Implemented" and autoscaling["evidence"] == ["https://yoyo.dyne/autoscaling-run.html"]
    assert autoscaling["notes"] == ("[manual override: The simulated cluster cannot add nodes (ops ticket 1234)] "
                                    "Scale-up and scale-down verified on the production fleet.")
    hpa = spec_entry(data, "pod_autoscaling")
    assert hpa["status"] == "Partially Implemented" and hpa["evidence"] == ["evidence/pod_autoscaling.md"]
    assert out["blocking"] == ['pod_autoscaling (MUST) is "Partially Implemented" by manual override: this submission will '
                               'not pass CNCF validation, which accepts only Implemented for a MUST']
    with open(out["summary_path"]) as handle:
        summary = handle.read()
    assert "| cluster_autoscaling | MUST | Implemented | manual | manual override: The simulated cluster" in summary
    assert "## Manual overrides (not verified by this collection)" in summary
    # survives round trips: same inputs, nothing changes
    assert run(tmp_path, results=full_results("1.35"))["changed"] is False
    # removing the override gives our verdict back (the [manual override: ...] marker is not a person's [manual] edit)
    os.unlink(os.path.join(product_dir, "overrides.yaml"))
    out = run(tmp_path, results=full_results("1.35"))
    assert spec_entry(load(out["path"]), "cluster_autoscaling")["notes"] == ""
    assert out["blocking"] == []


@pytest.mark.parametrize("text, message", [
    ("overrides:\n  dra_suport:\n    status: Implemented\n    reason: x\n", "dra_suport is not a requirement of the 1.35 checklist"),
    ("overrides:\n  gang_scheduling:\n    status: Implemented\n", "reason is required"),
    ("overrides:\n  gang_scheduling:\n    status: done\n    reason: x\n", "status 'done' must be one of"),
    ("overrides:\n  gang_scheduling:\n    status: ''\n    reason: x\n", "status '' must be one of"),      # blank only for a SHOULD
    ("overrides:\n  gpu_sharing:\n    status: N/A\n    reason: x\n", "N/A needs notes"),
    ("overrides:\n  gpu_sharing:\n    status: Implemented\n    reason: x\n    evidence: a.md\n", "evidence must be a list"),
    ("overrides:\n  gpu_sharing:\n    status: Implemented\n    reason: x\n    why: y\n", "unknown keys why"),
    ("gpu_sharing: {}\n", "must hold one key, overrides:"),
    ("overrides: [\n", "cannot be parsed"),
])
def test_bad_overrides_are_clear_errors(tmp_path, text, message):
    product_dir = tmp_path / "v1.35" / "turbo-encabulator"
    product_dir.mkdir(parents=True)
    (product_dir / "overrides.yaml").write_text(text)
    with pytest.raises(rp.ReportError, match=message):
        run(tmp_path)


def test_unreadable_existing_product_is_never_overwritten(tmp_path):
    product_dir = tmp_path / "v1.35" / "turbo-encabulator"
    product_dir.mkdir(parents=True)
    (product_dir / "PRODUCT.yaml").write_text("metadata:\n  vendorName: a\n  vendorName: b\n")
    with pytest.raises(rp.ReportError, match="the existing .*PRODUCT.yaml cannot be parsed .*nothing was written"):
        run(tmp_path, results=full_results("1.35"))
    assert (product_dir / "PRODUCT.yaml").read_text() == "metadata:\n  vendorName: a\n  vendorName: b\n"
    assert sorted(os.listdir(str(product_dir))) == ["PRODUCT.yaml"]


def test_existing_version_strings_survive_yaml_typing(tmp_path):
    # A person wrote platformVersion: 1.10 unquoted; we re-write it quoted and keep the digits they typed.
    first = run(tmp_path, metadata={"platformName": "Turbo"})
    with open(first["path"]) as handle:
        text = handle.read()
    with open(first["path"], "w") as handle:
        handle.write(text.replace('platformVersion: "[Platform Version]"', "platformVersion: 1.10"))
    out = run(tmp_path, metadata={"platformName": "Turbo"})
    assert load(out["path"])["metadata"]["platformVersion"] == "1.10"


# ------------------------------------------------------------------------------------------------
# Through ansible: a playbook that writes the report, run twice
# ------------------------------------------------------------------------------------------------

PLAYBOOK = """
- name: Report
  hosts: localhost
  gather_facts: false
  vars:
    results:
%(results)s
  tasks:
    - name: Write the submission
      k8s_ai.conformance.product_report:
        output_dir: "%(out)s"
        cluster_version: v1.35.3
        metadata: %(metadata)s
        results: "{{ results }}"
      register: report
    - name: Save what the module returned
      ansible.builtin.copy:
        content: "{{ report | to_nice_json }}"
        dest: "%(out)s/report.json"
        mode: "0644"
    - name: Validate what was written
      k8s_ai.conformance.product_validate:
        path: "{{ report.path }}"
      register: check
    - name: The submission is valid
      ansible.builtin.assert:
        that:
          - check.valid
          - report.blocking | length == 0
"""


def test_playbook_writes_a_valid_submission_and_is_idempotent(tmp_path):
    results = "\n".join("      - %s" % json.dumps(r) for r in full_results("1.35"))
    playbook = tmp_path / "report.yml"
    playbook.write_text(PLAYBOOK % {"results": results, "out": tmp_path / "out", "metadata": json.dumps(metadata_for("1.35"))})
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    command = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), str(playbook)]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    with open(str(tmp_path / "out" / "report.json")) as handle:
        report = json.load(handle)
    assert report["changed"] is True and report["version"] == "1.35" and report["validation"]["valid"] is True
    assert report["path"] == str(tmp_path / "out" / "v1.35" / "turbo-encabulator" / "PRODUCT.yaml")
    assert load(report["path"])["metadata"]["platformVersion"] == "1.10"
    assert len(report["evidence_files"]) == 12 and all(os.path.isfile(path) for path in report["evidence_files"])
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"TASK \[Write the submission\] \**\nok: \[localhost\]", second.stdout), second.stdout
    with open(str(tmp_path / "out" / "report.json")) as handle:
        assert json.load(handle)["changed"] is False


def test_playbook_reports_bad_input_without_a_traceback(tmp_path):
    playbook = tmp_path / "bad.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - k8s_ai.conformance.product_report:\n"
                        "        output_dir: %s\n        conformance_version: '1.31'\n        platform_dir: x\n" % tmp_path)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), str(playbook)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "conformance_version 1.31 has no checklist in this collection; supported versions: 1.33, 1.34, 1.35, 1.36" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
