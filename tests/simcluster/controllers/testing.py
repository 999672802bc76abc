"""Helpers for tests of the simulated workloads: the real `kubernetes` Python client against a started
SimCluster, pod watches and bounded waits (kubectl/helm runners live in tests/sim/conftest.py).

`wait_for` polls a predicate until it returns something truthy; it is a bounded wait, not a timing
assertion: the timeout only turns "never happened" into a clear failure naming what was awaited.
"""
from __future__ import annotations

import time
import uuid

import yaml
from kubernetes import client, config, watch

DEFAULT_TIMEOUT = 60.0
_CLIENTS = {}


def api_client(sim):
    """A `kubernetes` ApiClient for the cluster's kubeconfig (cached per kubeconfig path)."""
    api = _CLIENTS.get(sim.kubeconfig)
    if api is None:
        api = _CLIENTS[sim.kubeconfig] = config.new_client_from_config(config_file=sim.kubeconfig)
    return api


def core(sim):
    return client.CoreV1Api(api_client(sim))


def apps(sim):
    return client.AppsV1Api(api_client(sim))


def batch(sim):
    return client.BatchV1Api(api_client(sim))


def custom(sim):
    return client.CustomObjectsApi(api_client(sim))


def new_namespace(sim, prefix="t"):
    """Create a fresh namespace through the API and return its name."""
    name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
    core(sim).create_namespace({"metadata": {"name": name}})
    return name


def wait_for(predicate, what, timeout=DEFAULT_TIMEOUT, interval=0.05):
    """Poll `predicate()` until it returns a truthy value, which is returned. On timeout, fail
    naming `what` and the last value seen (exceptions from the predicate count as "not yet")."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
        except client.exceptions.ApiException as exc:
            last = "ApiException %s: %s" % (exc.status, exc.reason)
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s; last value: %r" % (timeout, what, last))
        time.sleep(interval)


def wait_until(fetch, check, what, timeout=DEFAULT_TIMEOUT):
    """Poll `fetch()` until `check(value)` holds; return that value (see wait_for)."""
    def probe():
        value = fetch()
        return (value,) if check(value) else None
    return wait_for(probe, what, timeout)[0]


def pods(sim, ns, selector=None):
    return core(sim).list_namespaced_pod(ns, label_selector=selector).items


def condition(obj, ctype):
    """The condition of type `ctype` of a typed client object (None if absent)."""
    for cond in (getattr(obj.status, "conditions", None) or []):
        if cond.type == ctype:
            return cond
    return None


def events_for(sim, ns, name):
    """Events about the object `name` in `ns` (core/v1), oldest first."""
    items = core(sim).list_namespaced_event(ns, field_selector="involvedObject.name=%s" % name).items
    return sorted(items, key=lambda e: (e.first_timestamp or e.event_time, e.metadata.name))


def pods_version(sim, ns):
    """The resourceVersion to start a pod watch from: take it before acting, watch after."""
    return core(sim).list_namespaced_pod(ns).metadata.resource_version


def watch_pods(sim, ns, until, since, timeout=DEFAULT_TIMEOUT, selector=None):
    """Stream pod watch events of `ns` after resourceVersion `since` to `until(event_type, pod_dict)`
    until it returns True.

    Events are plain dicts (the JSON the server sent), in the order the server sent them, so tests can
    check orderings (which pod was created or deleted first) without racing the controllers."""
    watcher = watch.Watch()
    deadline = time.monotonic() + timeout
    stream = watcher.stream(core(sim).list_namespaced_pod, ns, label_selector=selector, resource_version=since,
                            timeout_seconds=int(timeout))
    try:
        for event in stream:
            if until(event["type"], event["raw_object"]):
                return True
            if time.monotonic() > deadline:
                break
    finally:
        watcher.stop()
    raise AssertionError("pod watch in %s ended before the awaited state" % ns)


def load_yaml(text):
    return [d for d in yaml.safe_load_all(text) if d]
