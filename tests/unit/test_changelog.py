"""The changelog is made from the fragments by antsibull-changelog: the fragments are valid, `make changelog`
(hack/changelog.sh) puts every fragment's entries into the notes, and the committed CHANGELOG.rst says nothing
that the fragments and changelogs/changelog.yaml do not (it is generated, not written by hand). Fragments are
found in changelogs/fragments/, so the test covers those other branches add."""
from __future__ import annotations

import glob
import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANTSIBULL = os.path.join(ROOT, ".venv", "bin", "antsibull-changelog")


def normal(text):
    """Entries as text: rst escapes and line breaks do not matter."""
    return re.sub(r"\s+", " ", text.replace("\\", "")).strip()


def lint(*paths):
    return subprocess.run([ANTSIBULL, "lint"] + list(paths), cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("changelog") / "CHANGELOG.rst"
    proc = subprocess.run([os.path.join(ROOT, "hack", "changelog.sh"), str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out.read_text(encoding="utf-8")


def test_the_fragments_are_valid():
    proc = lint()
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_lint_names_what_is_wrong_in_a_fragment(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text('minor_changes: "one string, not a list"\nshiny_things:\n  - not a section\n')
    proc = lint(str(bad))
    assert proc.returncode != 0
    assert "invalid section: shiny_things" in proc.stdout and 'section "minor_changes" must be type list' in proc.stdout


def test_every_fragment_entry_is_in_the_generated_changelog(generated):
    with open(os.path.join(ROOT, "changelogs", "config.yaml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    fragments = sorted(glob.glob(os.path.join(ROOT, "changelogs", "fragments", "*.y*ml")))
    assert fragments or config.get("keep_fragments") is False
    text = normal(generated)
    for path in fragments:
        with open(path, encoding="utf-8") as handle:
            sections = yaml.safe_load(handle) or {}
        for section, entries in sections.items():
            if section == config.get("trivial_section_name", "trivial"):
                continue
            for entry in entries if isinstance(entries, list) else [entries]:
                assert normal(entry) in text, "%s: %s entry missing: %s" % (os.path.basename(path), section, entry)


def fragment_bullets(rst):
    """The entries of the change sections (Minor Changes, Bugfixes, ...) of an antsibull-changelog file; the
    "New Modules/Plugins/Roles" sections are left out: they quote each plugin's short_description, which other
    branches may reword without touching the changelog."""
    lines, bullets, section = rst.splitlines(), [], ""
    for i, line in enumerate(lines):
        underline = lines[i + 1] if i + 1 < len(lines) else ""
        if line and underline and set(underline) == {"-"} and len(underline) == len(line):
            section = line
        elif line.startswith("- ") and not section.startswith("New "):
            bullets.append(line[2:])
    return bullets


def test_the_committed_changelog_is_generated(generated):
    """Nothing in CHANGELOG.rst that the fragments do not say: it is made by `make changelog`, not by hand
    (fragments added since it was last made do not fail this; the lead runs `make changelog` after a merge)."""
    with open(os.path.join(ROOT, "CHANGELOG.rst"), encoding="utf-8") as handle:
        committed = handle.read()
    assert committed.splitlines()[:3] == generated.splitlines()[:3]   # antsibull-changelog's title block
    bullets = fragment_bullets(committed)
    assert bullets, "CHANGELOG.rst lists no change: run make changelog"
    text = normal(generated)
    for line in bullets:
        assert normal(line) in text, "CHANGELOG.rst says what no fragment says (edit a fragment, run make changelog): %s" % line
