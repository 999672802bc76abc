"""The store's label index: label-selector lists over a large type answer from it, with exactly the
results (and pages) a full scan gives, and stay right as objects change."""
from __future__ import annotations

import pytest

from simcluster.cluster import SimCluster
from simcluster.selectors import label_selector_predicate, parse_label_selector
from simcluster.store import LABEL_INDEX_MIN_OBJECTS

PODS = ("", "pods")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    sim = SimCluster("conformant", controllers=False, kubeconfig=str(tmp_path_factory.mktemp("idx") / "kubeconfig"))
    for name in ("default", "kube-system"):
        if sim.store.try_get(("", "namespaces"), None, name) is None:
            sim.restore({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    for i in range(LABEL_INDEX_MIN_OBJECTS + 500):
        sim.restore({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "p%05d" % i, "namespace": "default" if i % 2 else "kube-system",
            "labels": {"app": "a%d" % (i % 7), "x": str(i % 3)}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})
    return sim.store


def _names(store, pred, namespace=None, limit=None, token=None):
    items, _rv, token, _remaining = store.list(PODS, namespace, pred, None, limit, token)
    return [o["metadata"]["name"] for o in items], token


def _scan(store, pred, namespace=None):
    """What a full scan selects (the store's own list without a selector, filtered here)."""
    return [o["metadata"]["name"] for o in store.list(PODS, namespace)[0] if pred(o["metadata"].get("labels"))]


@pytest.mark.parametrize("selector", ["app=a3", "app in (a1,a2),x=1", "app=a3,x!=2", "app=nope", "x=0", "app",
                                      "app!=a1", "app==a6,x in (0,2)"])
def test_indexed_lists_equal_a_scan(store, selector):
    pred = parse_label_selector(selector)
    for namespace in (None, "default"):
        assert _names(store, pred, namespace)[0] == _scan(store, pred, namespace)
    expected = _scan(store, pred)
    if "nope" not in selector:
        assert expected                      # the selectors above do select something


def test_pages_of_an_indexed_list(store):
    pred = parse_label_selector("app=a3")
    got, token = _names(store, pred, limit=100)
    pages = 1
    while token:
        more, token = _names(store, pred, limit=100, token=token)
        got += more
        pages += 1
    assert got == _scan(store, pred) and pages > 1
    assert PODS + ("app",) in store._label_index          # pylint: disable=protected-access


def test_the_index_follows_writes(store):
    pod = store.get(PODS, "default", "p00001")
    assert pod["metadata"]["labels"]["app"] == "a1"
    pod["metadata"]["labels"]["app"] = "a3"
    store.update(PODS, pod)
    assert "p00001" in _names(store, parse_label_selector("app=a3"))[0]
    assert "p00001" not in _names(store, parse_label_selector("app=a1"))[0]
    matching = label_selector_predicate({"matchLabels": {"app": "a3"}})
    assert _names(store, matching)[0] == _scan(store, matching)
    store.delete(PODS, "default", "p00001", grace_period=0)
    assert "p00001" not in _names(store, parse_label_selector("app=a3"))[0]
    store.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "late", "namespace": "default", "labels": {"app": "a3"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})
    assert "late" in _names(store, parse_label_selector("app=a3"), "default")[0]
