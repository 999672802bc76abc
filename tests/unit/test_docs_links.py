"""The documentation holds together: every relative link in README.md, docs/ and the role READMEs points at a
file or directory of the repository, every #anchor at a heading of its page, every page of docs/ is reachable
from README.md, and every `k8s_ai.conformance.<name>` the text mentions is a module, role, playbook, doc
fragment or action group of this collection. Pages, modules and roles are discovered, not listed here.
"""
from __future__ import annotations

import glob
import os
import re
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
MENTION = re.compile(r"\bk8s_ai\.conformance\.([A-Za-z0-9_]+)")
EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


def pages():
    """README.md, every markdown page under docs/, and the roles' READMEs (docs/roles.md links to them)."""
    found = [os.path.join(ROOT, "README.md")]
    found += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    found += sorted(glob.glob(os.path.join(ROOT, "roles", "*", "README.md")))
    return found


def rel(path):
    return os.path.relpath(path, ROOT)


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def prose(text):
    """The text without fenced code blocks (their brackets are code, not links)."""
    return FENCE.sub("", text)


def links(text):
    body = prose(text)
    return LINK.findall(body) + REFERENCE.findall(body)


def slug(heading):
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)      # [text](url) -> text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    """The anchors a markdown page offers: one per heading (repeats get -1, -2, ... as on GitHub), and <a name>."""
    text = read(path)
    seen, found = {}, set(HTML_ANCHOR.findall(text))
    for heading in HEADING.findall(prose(text)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else "%s-%d" % (base, count))
    return found


def known_names():
    """What `k8s_ai.conformance.<name>` may name: modules, roles, playbooks, doc fragments, action groups."""
    names = {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))}
    names |= {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "plugins", "doc_fragments", "*.py"))}
    names |= {os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "roles", "*", "tasks"))}
    names |= {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))}
    with open(os.path.join(ROOT, "meta", "runtime.yml"), encoding="utf-8") as handle:
        names |= set((yaml.safe_load(handle) or {}).get("action_groups") or {})
    names.discard("__init__")
    return names


def broken_links(path):
    problems = []
    for target in links(read(path)):
        if target.startswith(EXTERNAL):
            continue
        file_part, _sep, anchor = target.partition("#")
        dest = path if not file_part else os.path.normpath(os.path.join(os.path.dirname(path), file_part))
        if not dest.startswith(ROOT + os.sep):
            problems.append("%s: %s leaves the repository" % (rel(path), target))
        elif not os.path.exists(dest):
            problems.append("%s: %s does not exist" % (rel(path), target))
        elif anchor and not (dest.endswith(".md") and anchor in anchors(dest)):
            problems.append("%s: %s has no heading for #%s" % (rel(path), target, anchor))
    return problems


@pytest.mark.parametrize("path", pages(), ids=rel)
def test_relative_links_and_anchors_resolve(path):
    assert broken_links(path) == []


@pytest.mark.parametrize("path", pages(), ids=rel)
def test_collection_names_mentioned_exist(path):
    names = known_names()
    text = read(path)
    unknown = sorted({name for name in MENTION.findall(text) if name not in names})
    assert unknown == [], "%s mentions k8s_ai.conformance.%s, which this collection does not have" % (
        rel(path), ", ".join(unknown))


def test_every_docs_page_is_reachable_from_the_readme():
    reached, todo = set(), [os.path.join(ROOT, "README.md")]
    while todo:
        page = todo.pop()
        if page in reached:
            continue
        reached.add(page)
        for target in links(read(page)):
            file_part = target.partition("#")[0]
            if target.startswith(EXTERNAL) or not file_part:
                continue
            dest = os.path.normpath(os.path.join(os.path.dirname(page), file_part))
            if os.path.isdir(dest) and os.path.isfile(os.path.join(dest, "README.md")):
                dest = os.path.join(dest, "README.md")
            if dest.endswith(".md") and os.path.isfile(dest):
                todo.append(dest)
    orphans = sorted(rel(p) for p in pages() if p not in reached)
    assert orphans == [], "no link from README.md leads to these pages: %s" % orphans


def test_each_check_page_documents_a_module_of_that_name():
    modules = {os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))}
    pages_ = glob.glob(os.path.join(ROOT, "docs", "checks", "*.md"))
    assert pages_, "docs/checks/ holds no page"
    for page in pages_:
        name = os.path.splitext(os.path.basename(page))[0]
        if name == "README":
            continue
        assert name in modules, "%s documents a check with no module plugins/modules/%s.py" % (rel(page), name)


def test_the_checker_sees_a_broken_link_and_a_missing_anchor(tmp_path, monkeypatch):
    """The checker itself: a page with a dead link, a dead anchor and an unknown module name is caught."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title A\n\n## Two words, here\n\n[ok](b.md#b-heading) [self](#two-words-here)\n"
                                            "[dead](c.md) [gone](b.md#nope)\n\n```\n[in code](nowhere.md)\n```\n")
    (tmp_path / "docs" / "b.md").write_text("# B heading\n")
    assert sorted(broken_links(str(tmp_path / "docs" / "a.md"))) == [
        "docs/a.md: b.md#nope has no heading for #nope", "docs/a.md: c.md does not exist"]
