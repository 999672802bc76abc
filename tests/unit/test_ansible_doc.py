"""`ansible-doc` renders every module and every role of the collection, found by looking at plugins/modules/ and
roles/ (not a list kept here): no warning, no markup error, and the parts a reader needs (descriptions of every
option, examples that are YAML, return values; for roles an entry point with described options)."""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_DOC = os.path.join(ROOT, ".venv", "bin", "ansible-doc")
PREFIX = "k8s_ai.conformance."


def modules():
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
                  if not os.path.basename(p).startswith("__"))


def roles():
    return sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "roles", "*", "tasks")))


def ansible_doc(kind, names, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([ANSIBLE_DOC, "-t", kind] + list(args) + [PREFIX + n for n in names], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    return proc.stdout


def description(value):
    text = " ".join(value) if isinstance(value, list) else (value or "")
    return text.strip()


def undescribed(options, where):
    """Options (and sub-options) without a description."""
    missing = []
    for name, spec in (options or {}).items():
        if not description(spec.get("description")):
            missing.append("%s.%s: no description" % (where, name))
        missing += undescribed(spec.get("suboptions") or spec.get("options"), "%s.%s" % (where, name))
    return missing


@pytest.fixture(scope="module")
def module_docs():
    return ansible_doc("module", modules()), json.loads(ansible_doc("module", modules(), "--json"))


@pytest.fixture(scope="module")
def role_docs():
    return ansible_doc("role", roles()), json.loads(ansible_doc("role", roles(), "--json"))


def test_the_collection_has_modules_and_roles_to_document():
    assert "dra_support" in modules() and "conform" in roles()


def test_every_module_renders_as_text(module_docs):
    text = module_docs[0]
    for name in modules():
        assert re.search(r"^> MODULE \*?%s\*? \(" % re.escape(PREFIX + name), text, re.M), name
    for bad in ("ERROR while parsing", "[WARNING]", "Traceback"):
        assert bad not in text, text[max(0, text.find(bad) - 500):text.find(bad) + 500]


@pytest.mark.parametrize("name", modules())
def test_module_documentation_is_complete(module_docs, name):
    data = module_docs[1][PREFIX + name]
    doc = data["doc"]
    assert description(doc.get("short_description")) and description(doc.get("description")), name
    assert doc.get("author"), name
    assert undescribed(doc.get("options"), name) == []
    examples = yaml.safe_load(data["examples"] or "")
    assert isinstance(examples, list) and examples, "%s: EXAMPLES is not a list of tasks" % name
    assert (PREFIX + name + ":") in data["examples"], "%s: no example calls it by its FQCN" % name
    returns = data["return"]
    assert returns, "%s: no RETURN" % name
    for key, spec in returns.items():
        assert description(spec.get("description")) and spec.get("returned") and spec.get("type"), "%s: %s" % (name, key)


def test_every_role_renders_as_text(role_docs):
    text = role_docs[0]
    for name in roles():
        assert re.search(r"^> ROLE: \*?%s\*? \(" % re.escape(PREFIX + name), text, re.M), name
    for bad in ("ERROR while parsing", "[WARNING]", "Traceback"):
        assert bad not in text, text[max(0, text.find(bad) - 500):text.find(bad) + 500]


@pytest.mark.parametrize("name", roles())
def test_role_argument_specs_are_complete(role_docs, name):
    entry_points = role_docs[1][PREFIX + name]["entry_points"]
    assert "main" in entry_points, name
    for entry, spec in entry_points.items():
        assert description(spec.get("short_description")), "%s:%s" % (name, entry)
        assert undescribed(spec.get("options"), "%s:%s" % (name, entry)) == []
