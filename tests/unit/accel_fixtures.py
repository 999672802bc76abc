"""Readers for the real upstream files in tests/unit/fixtures/accel (see its SOURCES.md).

They turn logs and evidence documents from real conformance runs into the inputs the accelerator checks'
pure functions take: exposition text, pod logs, DRA objects and discovery facts.
"""
from __future__ import annotations

import os
import re

import yaml

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "accel")


def read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as handle:
        return handle.read()


def code_blocks(markdown):
    """Contents of the fenced code blocks of a markdown document, in order."""
    return re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.S)


def exposition_from_markdown(name):
    """The Prometheus exposition lines of an evidence document: every HELP/TYPE/sample line of its code
    blocks (vendors paste scrapes between shell commands)."""
    lines = []
    for block in code_blocks(read(name)):
        for line in block.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")) or re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\{[^}]*\})? \S+$", line):
                lines.append(line)
    return "\n".join(lines) + "\n"


def gardener_pod_logs(log_name):
    """{pod name: log text} from a gardener test log's "Pod <name> logs:" sections (two-space indented)."""
    logs, current = {}, None
    for line in read(log_name).splitlines():
        match = re.search(r"Pod (\S+) logs:$", line)
        if match:
            current = match.group(1)
            logs[current] = []
            continue
        if current is not None:
            if line.startswith("  "):
                logs[current].append(line[2:])
            else:
                current = None
    return {name: "\n".join(lines) for name, lines in logs.items()}


def gardener_dra_discovery(log_name="gardener-v1.33-dra_support.log"):
    """(server minor, served resource.k8s.io versions, {resource: item count}) from gardener's DRA log."""
    text = read(log_name)
    minor = int(re.search(r"Server Version: v1\.(\d+)\.", text).group(1))
    served = re.findall(r"ℹ️\s+- resource\.k8s\.io/(\w+)", text)
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+) is accessible \((\d+) items found\)", text)}
    return minor, served, counts


def kops_dra_discovery(name="kops-v1.35-TestAcceleratorsDRASupport.md"):
    """(served versions, resources seen in `kubectl api-resources`) from the kOps 1.35 DRA output."""
    text = read(name)
    served = sorted(set(re.findall(r"^resource\.k8s\.io/(\w+)$", text, flags=re.M)))
    resources = re.findall(r"^(\w+)\s+resource\.k8s\.io/\w+\s+(?:true|false)\s+\w+$", text, flags=re.M)
    return served, resources


def readme_resource_slices():
    """The ResourceSlice list printed in dra-example-driver's README (resource.k8s.io/v1)."""
    text = read("dra-example-driver-README.md")
    for block in code_blocks(text):
        if "kind: ResourceSlice" in block and "$ kubectl get resourceslice -o yaml" in block:
            return yaml.safe_load(block.split("$ kubectl get resourceslice -o yaml", 1)[1])["items"]
    raise AssertionError("no ResourceSlice list in the README")


def yaml_documents(name):
    return [doc for doc in yaml.safe_load_all(read(name)) if doc]
