# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Cluster access for every check: connection, discovery, reads, writes, waits, logs, proxy, probe namespaces.

This is the only file that imports kubernetes.core's module_utils (its connection options and
`get_api_client`): they are not a published API, so one file carries the cost of an upgrade. Connection
options are kubernetes.core's own (`kubernetes.core.k8s_auth_options`), so a playbook's module_defaults
for kubernetes.core work for our modules too.

Requests go through the dynamic client's raw `request()` (stable across kubernetes client versions) and
return plain JSON dicts; the checks never see client model objects. Discovery is fetched once per run
(aggregated discovery: one call; older servers: the group list plus one call per group-version needed).
Every API failure becomes one of the ClusterError classes below, whose message says what to do about it:
modules turn them into `fail_json`, never into a traceback.
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import random
import select
import signal
import socket
import stat
import string
import threading
import time
import traceback

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    HAS_KUBERNETES_CORE = True
    KUBERNETES_CORE_IMPORT_ERROR = None
except ImportError:
    AUTH_ARG_SPEC = {}
    HAS_KUBERNETES_CORE = False
    KUBERNETES_CORE_IMPORT_ERROR = traceback.format_exc()

try:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3HTTPError, SSLError as Urllib3SSLError
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):
        """Stand-in so `except ApiException` stays valid when the client is missing."""

    class Urllib3HTTPError(Exception):
        """Stand-in (see ApiException)."""

    class Urllib3SSLError(Urllib3HTTPError):
        """Stand-in (see ApiException)."""


MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "k8s-ai-conformance"
CHECK_LABEL = "k8s-ai-conformance/check"
STARTED_ANNOTATION = "k8s-ai-conformance/started-at"
DEADLINE_ANNOTATION = "k8s-ai-conformance/deadline"
# Which process created a probe namespace: "<machine>/<pid>/<process start>", the machine as a hash of
# host name and boot id (no host name is written to the cluster). A later run on the same machine whose
# creator process is gone sweeps the namespace at once instead of waiting for its deadline.
OWNER_ANNOTATION = "k8s-ai-conformance/owner"
# A namespace is a leftover only once its run's deadline is this far in the past: the run itself stops
# waiting at its deadline and then needs a moment to clean up.
LEFTOVER_GRACE_SECONDS = 120
DEFAULT_REQUEST_TIMEOUT = 30
DISCOVERY_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                    "application/json")
RBAC_DOC = "docs/rbac.md"


# --------------------------------------------------------------------------------------------- errors
class ClusterError(Exception):
    """A cluster access failure whose message names the fix. Modules report it with fail_json."""


class ConnectionConfigError(ClusterError):
    """The connection settings cannot be used (missing kubeconfig, unknown context, ...)."""


class UnreachableError(ClusterError):
    """The API server did not answer (connection refused, DNS, TLS)."""


class UnauthorizedError(ClusterError):
    """401: the API server rejected the credentials."""


class ForbiddenError(ClusterError):
    """403: RBAC denies a request. `rule` is the missing PolicyRule as a dict."""

    def __init__(self, message, rule=None):
        super(ForbiddenError, self).__init__(message)
        self.rule = rule


class MissingApiError(ClusterError):
    """The API group, version or resource (a CRD, DRA) is not served."""


class NotFoundError(ClusterError):
    """404 for a named object."""


class ConflictError(ClusterError):
    """409: the object exists already or changed meanwhile."""


class ApiRequestError(ClusterError):
    """Any other API error (422 Invalid, 5xx, ...). `status` holds the HTTP code."""

    def __init__(self, message, status=None, reason=None):
        super(ApiRequestError, self).__init__(message)
        self.status = status
        self.reason = reason


class ResponseTooLarge(ClusterError):
    """The answer was longer than the caller's limit (it was not read past the limit)."""


class WaitTimeout(ClusterError):
    """A bounded wait ran out. `last` is the last object the predicate saw (or None)."""

    def __init__(self, message, last=None):
        super(WaitTimeout, self).__init__(message)
        self.last = last


class ProbeInterrupted(BaseException):
    """SIGTERM arrived during a probe: unwinds like KeyboardInterrupt so cleanup still runs."""


def require_libraries():
    """Raise ClusterError naming the missing Python library (modules check this first)."""
    if not HAS_KUBERNETES:
        raise ClusterError("the Python library kubernetes (>= 24.2.0) is required on the Ansible controller: "
                           "pip install kubernetes (see the collection's requirements.txt)")
    if not HAS_KUBERNETES_CORE:
        raise ClusterError("the collection kubernetes.core (>= 6.0.0) is required: ansible-galaxy collection "
                           "install kubernetes.core (or install the ansible package, which bundles it)")


def auth_arg_spec():
    """kubernetes.core's connection options (kubeconfig, context, host, api_key, validate_certs, ca_cert,
    client_cert, client_key, proxy, ...), as a fresh copy a module may extend."""
    return copy.deepcopy(AUTH_ARG_SPEC)


# --------------------------------------------------------------------------------------------- paths
def split_api_version(api_version):
    """"v1" -> ("", "v1"); "resource.k8s.io/v1" -> ("resource.k8s.io", "v1")."""
    group, version = api_version.rpartition("/")[::2]
    return group, version


def collection_path(api_version, resource, namespace=None):
    group, version = split_api_version(api_version)
    base = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
    if namespace:
        base += "/namespaces/%s" % namespace
    return "%s/%s" % (base, resource)


def object_path(api_version, resource, name, namespace=None, subresource=None):
    path = "%s/%s" % (collection_path(api_version, resource, namespace), name)
    return path + "/" + subresource if subresource else path


def missing_rule(api_version, resource, verb, subresource=None):
    """The RBAC rule a 403 says is missing, as a PolicyRule dict."""
    group = split_api_version(api_version)[0]
    name = resource + ("/" + subresource if subresource else "")
    return {"apiGroups": [group], "resources": [name], "verbs": [verb]}


# --------------------------------------------------------------------------------------------- time
class Deadline(object):
    """A point in monotonic time; waits use min(their own timeout, what is left of the deadline)."""

    def __init__(self, seconds):
        self.seconds = float(seconds)
        self.started = time.monotonic()
        self.wall_started = time.time()

    def remaining(self):
        return max(0.0, self.started + self.seconds - time.monotonic())

    def expired(self):
        return self.remaining() <= 0

    def bound(self, timeout):
        """`timeout` seconds, or less when the deadline comes first."""
        return min(float(timeout), self.remaining())

    @property
    def wall_deadline(self):
        return self.wall_started + self.seconds


def rfc3339(epoch):
    return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text):
    """RFC 3339 text -> epoch seconds; None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def wait_until(describe, fetch, predicate, timeout, sleep, deadline=None, summarize=None):
    """Poll `fetch()` until `predicate(obj)` holds; return that object.

    Bounded by `timeout` and the optional Deadline, measured on the monotonic clock. `predicate` is a
    pure function of the fetched object (tests call predicates directly). On timeout raise WaitTimeout
    naming what was awaited and, via `summarize(obj)`, what was last seen.
    """
    budget = deadline.bound(timeout) if deadline else float(timeout)
    end = time.monotonic() + budget
    last = None
    while True:
        last = fetch()
        if predicate(last):
            return last
        left = end - time.monotonic()
        if left <= 0:
            seen = summarize(last) if summarize else ""
            seen = "; last seen: %s" % seen if seen else ""
            raise WaitTimeout("timed out after %ss waiting for %s%s. Raise wait_timeout if the cluster is slow, "
                              "or fix what keeps it from happening." % (round(budget, 1), describe, seen), last=last)
        time.sleep(max(0.01, min(float(sleep), left)))


# --------------------------------------------------------------------------------------------- discovery
class Discovery(object):
    """Which API groups, versions and resources the server serves; fetched once per run."""

    def __init__(self, cluster, aggregated=True):
        self._cluster = cluster
        self._groups = {}          # group -> [versions, preferred first]
        self._resources = {}       # (group, version) -> {resource: info}
        self.aggregated = False
        self._load(DISCOVERY_ACCEPT if aggregated else "application/json")

    def _load(self, accept):
        """Aggregated discovery when the server offers it (one answer per root with every resource);
        otherwise the legacy group list, resources then fetched per group-version on first use."""
        for path, core in (("/api", True), ("/apis", False)):
            body = self._cluster.get_json(path, headers={"Accept": accept})
            if body.get("kind") == "APIGroupDiscoveryList":
                self.aggregated = True
                self._load_aggregated(body)
            elif core:
                self._groups[""] = list(body.get("versions") or [])
            else:
                for group in body.get("groups") or []:
                    versions = [v["version"] for v in group.get("versions") or []]
                    preferred = (group.get("preferredVersion") or {}).get("version")
                    if preferred in versions:
                        versions.remove(preferred)
                        versions.insert(0, preferred)
                    self._groups[group["name"]] = versions

    def _load_aggregated(self, body):
        for item in body.get("items") or []:
            group = (item.get("metadata") or {}).get("name") or ""
            versions = self._groups.setdefault(group, [])
            for entry in item.get("versions") or []:
                version = entry["version"]
                if version not in versions:
                    versions.append(version)
                table = self._resources.setdefault((group, version), {})
                for res in entry.get("resources") or []:
                    table[res["resource"]] = {
                        "kind": (res.get("responseKind") or {}).get("kind", ""),
                        "namespaced": res.get("scope") == "Namespaced",
                        "verbs": list(res.get("verbs") or []),
                        "subresources": [s.get("subresource") for s in res.get("subresources") or []],
                    }

    def groups(self):
        return {g: list(v) for g, v in self._groups.items()}

    def served_versions(self, group):
        """Versions of `group` the server serves, preferred first ([] when the group is absent)."""
        return list(self._groups.get(group, []))

    def resources(self, group, version):
        """{resource: {kind, namespaced, verbs, subresources}} served in group/version ({} if none)."""
        key = (group, version)
        if key not in self._resources:
            if version not in self._groups.get(group, []):
                return {}
            path = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
            try:
                body = self._cluster.get_json(path)
            except (NotFoundError, MissingApiError):
                body = {}
            except ApiRequestError as err:
                if err.status != 503:
                    raise
                body = {}
            table = {}
            for res in body.get("resources") or []:
                name = res["name"]
                if "/" in name:
                    parent, sub = name.split("/", 1)
                    table.setdefault(parent, {"kind": "", "namespaced": res.get("namespaced", False),
                                              "verbs": [], "subresources": []})["subresources"].append(sub)
                    continue
                entry = table.setdefault(name, {"subresources": []})
                entry.update({"kind": res.get("kind", ""), "namespaced": bool(res.get("namespaced")),
                              "verbs": list(res.get("verbs") or [])})
            self._resources[key] = table
        return self._resources[key]

    def has(self, api_version, resource):
        group, version = split_api_version(api_version)
        return resource in self.resources(group, version)

    def require(self, api_version, resource, fix):
        """Raise MissingApiError (with `fix` as the remedy) unless api_version/resource is served."""
        if not self.has(api_version, resource):
            raise MissingApiError("the API server does not serve %s in %s: %s" % (resource, api_version, fix))


# --------------------------------------------------------------------------------------------- kubeconfig
def check_kubeconfig(path, context=None):
    """Raise ConnectionConfigError naming the fix when the kubeconfig file cannot be what the client
    needs: unreadable, not UTF-8, not YAML, not a mapping, or without the requested context. Messages
    never quote the file's content (it holds credentials), only line numbers and context names."""
    fix = "point the kubeconfig option (or K8S_AUTH_KUBECONFIG) at a valid kubeconfig file (kubectl config view " \
          "--raw > FILE writes one)"
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise ConnectionConfigError("the kubeconfig file cannot be read (%s): %s" % (err.strerror or err, fix))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConnectionConfigError("the kubeconfig file is not UTF-8 text (byte %d): %s" % (err.start, fix))
    try:
        import yaml
        doc = yaml.safe_load(text)
    except ImportError:
        return None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = " at line %d, column %d" % (mark.line + 1, mark.column + 1) if mark is not None else ""
        if mark is None and getattr(err, "position", None) is not None:
            where = " at character %d" % (err.position + 1)
        problem = getattr(err, "problem", None) or getattr(err, "reason", None) or "parse error"
        raise ConnectionConfigError("the kubeconfig file is not valid YAML (%s%s): %s" % (problem, where, fix))
    if not isinstance(doc, dict) or not any(key in doc for key in ("clusters", "contexts", "users")):
        raise ConnectionConfigError("the kubeconfig file is not a kubeconfig (expected a mapping with clusters, "
                                    "users and contexts): %s" % fix)
    contexts = [c.get("name") for c in doc.get("contexts") or [] if isinstance(c, dict)]
    wanted = context or doc.get("current-context")
    if context and context not in contexts:
        known = ", ".join(map(str, contexts)) or "none"
        raise ConnectionConfigError("context %s is not in the kubeconfig (its contexts: %s): set the context option "
                                    "(or K8S_AUTH_CONTEXT) to one of them" % (context, known))
    if not wanted and not contexts:
        raise ConnectionConfigError("the kubeconfig has no contexts and no current-context: %s" % fix)
    return kubeconfig_server(doc, wanted)


def kubeconfig_server(doc, context):
    """The server URL of `context` in a parsed kubeconfig (for messages), or None."""
    try:
        ctx = [c for c in doc.get("contexts") or [] if c.get("name") == context][0]["context"]
        cluster = [c for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")][0]["cluster"]
        return str(cluster.get("server")) or None
    except (IndexError, KeyError, TypeError, AttributeError):
        return None


# --------------------------------------------------------------------------------------------- the client
class Cluster(object):
    """One connection to one cluster for one module run."""

    def __init__(self, dynamic_client, host, request_timeout=DEFAULT_REQUEST_TIMEOUT):
        self._client = dynamic_client
        self.host = host
        self.request_timeout = request_timeout
        self._discovery = None
        self._version = None
        self.retry = RetryPolicy()
        self.retries = 0                 # transient failures retried in this run
        self.owned_namespaces = set()    # probe namespaces this run created: writes into them are safe to retry

    @classmethod
    def connect(cls, params, request_timeout=DEFAULT_REQUEST_TIMEOUT):
        """Connect with kubernetes.core's options taken from module params (or K8S_AUTH_* variables)."""
        require_libraries()
        auth = {key: params.get(key) for key in AUTH_ARG_SPEC if params.get(key) is not None}
        kubeconfig = auth.get("kubeconfig")
        if isinstance(kubeconfig, str) and not os.path.exists(os.path.expanduser(kubeconfig)):
            raise ConnectionConfigError("kubeconfig file %s does not exist: set the kubeconfig option (or "
                                        "K8S_AUTH_KUBECONFIG) to the path of a readable kubeconfig file (Ansible "
                                        "masks the path: kubernetes.core marks the option no_log)" % kubeconfig)
        server = None
        if isinstance(kubeconfig, str):
            server = check_kubeconfig(os.path.expanduser(kubeconfig), auth.get("context"))
        try:
            client = get_api_client(**auth)
        except (ApiException, Urllib3HTTPError) as err:
            host = _host_from_error(err) or params.get("host") or server or "the API server"
            raise _map_transport_error(err, host, "GET", "/version")
        except Exception as err:  # kubernetes.core wraps config errors; yaml and io errors arrive raw
            raise ConnectionConfigError("cannot use the Kubernetes connection settings: %s. Check kubeconfig and "
                                        "context (or host and api_key), as for kubernetes.core modules" % err)
        return cls(client.client, client.configuration.host, request_timeout)

    # ----------------------------------------------------------------------------------- raw requests
    def request(self, method, path, query=None, body=None, headers=None, content_type=None, context=None,
                timeout=None, retry=True, max_bytes=None):
        """Send one request; return (status, body text). API errors become ClusterError subclasses.

        `context` = {"verb", "api_version", "resource", "subresource", "namespace", "name"} makes
        403/404 messages precise (which RBAC rule is missing, which API is not served).
        Transient failures are retried with backoff (see retry_decision): 429 always, 502/503/504 and
        dropped connections for idempotent methods and for writes the caller marks `retry="safe"`.
        With `max_bytes`, at most that many bytes of the body are read; a longer one raises ResponseTooLarge.
        """
        params = {"query_params": list(query or []), "header_params": dict(headers or {}),
                  "serialize": False, "_request_timeout": timeout or self.request_timeout}
        if content_type:
            params["content_type"] = content_type
        if max_bytes:
            params["_preload_content"] = False
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.request(method, path, body=body, **params)
            except (ApiException, Urllib3HTTPError) as err:
                delay = retry_decision(err, method, attempt, retry, time.monotonic() - started, self.retry)
                if delay is None:
                    mapped = _map_transport_error(err, self.host, method, path, context)
                    if attempt > 1:
                        spent = time.monotonic() - started
                        mapped.args = ("%s (after %d attempts over %.1fs)" % (mapped, attempt, spent),)
                    raise mapped
                self.retries += 1
                time.sleep(delay)
                continue
            if max_bytes:
                data = _read_limited(response, max_bytes, "%s %s%s" % (method, self.host, path))
            else:
                data = response.data
            return response.status, data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")

    def get_json(self, path, query=None, headers=None, context=None):
        _status, text = self.request("GET", path, query=query, headers=headers, context=context)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            raise ApiRequestError("the API server answered GET %s%s with something that is not JSON: %r"
                                  % (self.host, path, text[:200]))

    # ----------------------------------------------------------------------------------- metadata
    def version(self):
        """/version, with `minor_int` added (EKS and GKE write minors like "33+")."""
        if self._version is None:
            info = self.get_json("/version")
            digits = "".join(ch for ch in str(info.get("minor", "")) if ch.isdigit())
            info["minor_int"] = int(digits) if digits else None
            self._version = info
        return self._version

    def discovery(self):
        if self._discovery is None:
            self._discovery = Discovery(self)
        return self._discovery

    # ----------------------------------------------------------------------------------- reads
    def get(self, api_version, resource, name, namespace=None, missing_ok=True):
        """One object as a dict; None when it does not exist and `missing_ok`."""
        ctx = _ctx("get", api_version, resource, namespace, name)
        try:
            return self.get_json(object_path(api_version, resource, name, namespace), context=ctx)
        except NotFoundError:
            if missing_ok:
                return None
            raise

    def list_page(self, api_version, resource, namespace=None, label_selector=None, field_selector=None,
                  limit=500, continue_token=None):
        """One page of a list: (items, continue token or None, remainingItemCount or None)."""
        query = [("limit", int(limit))]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if continue_token:
            query.append(("continue", continue_token))
        ctx = _ctx("list", api_version, resource, namespace)
        body = self.get_json(collection_path(api_version, resource, namespace), query=query, context=ctx)
        meta = body.get("metadata") or {}
        return list(body.get("items") or []), meta.get("continue") or None, meta.get("remainingItemCount")

    def list(self, api_version, resource, namespace=None, label_selector=None, field_selector=None,
             limit=500, max_items=None):
        """All matching objects, paged with limit/continue. A continue token that expired (410) while
        paging restarts the list once, as real clients do."""
        for attempt in (1, 2):
            items, token = [], None
            try:
                while True:
                    page, token, _remaining = self.list_page(api_version, resource, namespace, label_selector,
                                                             field_selector, limit, token)
                    items.extend(page)
                    if not token or (max_items and len(items) >= max_items):
                        return items[:max_items] if max_items else items
            except ApiRequestError as err:
                if err.status != 410 or attempt == 2 or not token:
                    raise
        return []

    def events_for(self, kind, name, namespace):
        """core/v1 Events about one object, oldest first."""
        selector = "involvedObject.kind=%s,involvedObject.name=%s" % (kind, name)
        events = self.list("v1", "events", namespace=namespace, field_selector=selector)
        return sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def pod_logs(self, namespace, name, container=None, tail_lines=None):
        """A container's log text ("" when the container has not started)."""
        query = []
        if container:
            query.append(("container", container))
        if tail_lines:
            query.append(("tailLines", int(tail_lines)))
        ctx = _ctx("get", "v1", "pods", namespace, name, "log")
        try:
            _status, text = self.request("GET", object_path("v1", "pods", name, namespace, "log"), query=query,
                                         headers={"Accept": "text/plain, */*"}, context=ctx)
        except ApiRequestError as err:
            if err.status == 400:   # "container ... is waiting to start"
                return ""
            raise
        return text

    def proxy_get(self, kind, namespace, name, port, path, scheme=None, timeout=None, max_bytes=None):
        """GET through the API server's pods/proxy or services/proxy (no port-forward needed).

        Returns (HTTP status, text). The target's own error statuses are returned, not raised; API-level
        failures (403 on the proxy subresource, unreachable API) raise as usual.
        """
        target = "%s%s:%s" % ((scheme + ":") if scheme else "", name, port)
        resource = "pods" if kind == "pod" else "services"
        url = "/api/v1/namespaces/%s/%s/%s/proxy/%s" % (namespace, resource, target, path.lstrip("/"))
        ctx = _ctx("get", "v1", resource, namespace, name, "proxy")
        try:
            return self.request("GET", url, headers={"Accept": "text/plain, */*"}, context=ctx, timeout=timeout,
                                retry="proxy", max_bytes=max_bytes)
        except ApiRequestError as err:
            return err.status or 0, str(err)
        except NotFoundError as err:
            return 404, str(err)

    # ----------------------------------------------------------------------------------- writes
    def create(self, api_version, resource, body, namespace=None):
        """Create an object. Inside a probe namespace this run created (and for that namespace itself) a
        retried create is safe: nobody else writes there, so 409 AlreadyExists after a retry means the
        earlier attempt landed, and the object is read back."""
        meta = body.get("metadata") or {}
        ctx = _ctx("create", api_version, resource, namespace, meta.get("name"))
        owned = meta.get("name") and (namespace in self.owned_namespaces or
                                      (resource == "namespaces" and meta.get("name") in self.owned_namespaces))
        before = self.retries
        try:
            _status, text = self.request("POST", collection_path(api_version, resource, namespace),
                                         body=body, context=ctx, retry="safe" if owned else True)
        except ConflictError:
            if not owned or self.retries == before:
                raise
            found = self.get(api_version, resource, meta["name"], namespace)
            if found is None:
                raise
            return found
        return json.loads(text) if text else {}

    def delete(self, api_version, resource, name, namespace=None, propagation="Background", grace_period=None):
        """Delete one object; True when a delete was issued, False when it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if grace_period is not None:
            body["gracePeriodSeconds"] = int(grace_period)
        ctx = _ctx("delete", api_version, resource, namespace, name)
        try:
            self.request("DELETE", object_path(api_version, resource, name, namespace), body=body, context=ctx)
        except NotFoundError:
            return False
        except ConflictError:
            if resource != "namespaces":
                raise
            return True   # already terminating (a retried DELETE of a namespace answers 409 while it finalizes)
        return True

    # ----------------------------------------------------------------------------------- waits
    def wait_for_object(self, describe, api_version, resource, name, namespace, predicate, timeout, sleep,
                        deadline=None, summarize=None):
        """Poll one object (None while absent) until `predicate(obj)` holds."""
        return wait_until(describe, lambda: self.get(api_version, resource, name, namespace), predicate,
                          timeout, sleep, deadline, summarize)


def _read_limited(response, max_bytes, what):
    """Read at most `max_bytes` of a streamed response; raise ResponseTooLarge beyond that."""
    try:
        data = response.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ResponseTooLarge("%s answered more than %d MiB; only that much is read (a metrics endpoint "
                                   "that large is itself a problem: check what it exports)"
                                   % (what, max_bytes // (1024 * 1024)))
        return data
    finally:
        response.close()
        response.release_conn()


def _ctx(verb, api_version, resource, namespace=None, name=None, subresource=None):
    return {"verb": verb, "api_version": api_version, "resource": resource, "namespace": namespace,
            "name": name, "subresource": subresource}


def _host_from_error(err):
    pool = getattr(err, "pool", None)
    if pool is not None and getattr(pool, "host", None):
        return "%s://%s:%s" % (getattr(pool, "scheme", "https"), pool.host, pool.port)
    return None


def _status_message(err):
    body = getattr(err, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body) if body else {}
        return status.get("message") or str(body or "").strip(), status.get("reason") or getattr(err, "reason", "")
    except (ValueError, AttributeError):
        return str(body or "").strip()[:300], getattr(err, "reason", "")


def _describe(ctx):
    if not ctx:
        return ""
    what = ctx["resource"] + ("/" + ctx["subresource"] if ctx.get("subresource") else "")
    where = " in namespace %s" % ctx["namespace"] if ctx.get("namespace") else " (cluster-wide)"
    return "%s %s %s%s" % (ctx["verb"], ctx["api_version"], what, where)


def _map_transport_error(err, host, method, path, context=None):
    """Turn a client/urllib3 exception into a ClusterError whose message names the fix."""
    url = "%s%s" % (host, path)
    if not isinstance(err, ApiException):
        if isinstance(err, Urllib3SSLError) or "SSL" in type(getattr(err, "reason", None) or err).__name__ \
                or "CERTIFICATE_VERIFY" in str(err):
            return UnreachableError("TLS verification with the Kubernetes API at %s failed: %s. Point ca_cert at the "
                                    "cluster's CA (or fix the kubeconfig's certificate-authority data)" % (host, err))
        return UnreachableError("cannot reach the Kubernetes API at %s (%s %s): %s. Check that the cluster is up, "
                                "that host/kubeconfig point at it and that it is reachable from the Ansible "
                                "controller (proxy settings?)" % (host, method, path, getattr(err, "reason", err)))
    status = getattr(err, "status", None)
    message, reason = _status_message(err)
    if status == 401:
        return UnauthorizedError("the Kubernetes API at %s rejected the credentials (401 Unauthorized): %s. The "
                                 "token or client certificate in the kubeconfig is missing, invalid or expired; "
                                 "refresh the kubeconfig or pass a valid api_key" % (host, message or reason))
    if status == 403:
        if context:
            rule = missing_rule(context["api_version"], context["resource"], context["verb"],
                                context.get("subresource"))
            return ForbiddenError("forbidden: %s. The user lacks the RBAC rule %s; bind the ClusterRole from %s "
                                  "(files/rbac/) that matches the mode you run, or grant that rule"
                                  % (message or _describe(context), json.dumps(rule, sort_keys=True), RBAC_DOC),
                                  rule=rule)
        return ForbiddenError("forbidden: %s %s: %s. Grant access to this URL (nonResourceURLs) - see %s"
                              % (method, path, message, RBAC_DOC))
    if status == 404:
        if context and not context.get("name"):
            return MissingApiError("the API server does not serve %s (%s): %s. Install or enable that API"
                                   % (_describe(context), url, message))
        return NotFoundError("%s: %s" % (_describe(context) or url, message or "not found"))
    if status == 409:
        return ConflictError("%s: %s" % (_describe(context) or url, message))
    hint = ""
    if "failed calling webhook" in (message or ""):
        hint = (". An admission webhook did not answer: check its Service and pods (kubectl get "
                "validatingwebhookconfigurations,mutatingwebhookconfigurations), or exempt namespaces labelled "
                "%s=%s from it with a namespaceSelector" % (MANAGED_BY_LABEL, MANAGED_BY_VALUE))
    elif status == 429 or (status or 0) >= 500:
        hint = (". The API server is overloaded or failing; retries with backoff did not get through. Check the "
                "control plane's health (kubectl get --raw /readyz?verbose) and run the check again")
    return ApiRequestError("the Kubernetes API at %s answered %s %s with %s %s: %s%s"
                           % (host, method, path, status, reason, message, hint), status=status, reason=reason)


# --------------------------------------------------------------------------------------------- retries
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
RETRY_STATUSES = (502, 503, 504)


class RetryPolicy(object):
    """Bounds for retrying transient failures: like client-go, up to 10 attempts for an answer with
    Retry-After; exponential backoff from `base` doubling to `cap` seconds; never longer than `budget`
    seconds in all for one request (an outage longer than that fails with UnreachableError)."""

    def __init__(self, attempts=10, base=0.1, cap=4.0, retry_after_cap=10.0, budget=45.0, rng=None):
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.retry_after_cap = retry_after_cap
        self.budget = budget
        self.rng = rng or random.Random()

    def backoff(self, attempt):
        """Seconds before attempt `attempt + 1`: base * 2^(attempt-1), capped, with up to 50 % jitter."""
        delay = min(self.cap, self.base * (2 ** (attempt - 1)))
        return delay * (0.5 + self.rng.random() / 2)


def retry_after_seconds(err):
    """The Retry-After header of an API error in seconds (None when absent or not a number)."""
    headers = getattr(err, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def retry_decision(err, method, attempt, retry, elapsed, policy):
    """Pure: seconds to wait before retrying after `err`, or None to give up.

    `retry`: False never retries. Otherwise, as client-go does, an answer the server marks retryable
    (429, or a 5xx with Retry-After: it was refused unprocessed) is retried on any method, waiting what
    Retry-After asks (capped); with `retry` True, 502/503/504 without Retry-After and dropped
    connections are retried on idempotent methods too, and with "safe" (a write the caller knows is
    safe to repeat) also on POST; "proxy" (a proxied target's own 5xx is its answer) only takes the
    first rule. TLS failures, other 4xx and plain 500s (often a webhook's or the server's real answer)
    are never retried.
    """
    if not retry or attempt >= policy.attempts or elapsed >= policy.budget:
        return None
    left = max(0.0, policy.budget - elapsed)
    repeatable = (method.upper() in IDEMPOTENT_METHODS or retry == "safe") and retry != "proxy"
    if isinstance(err, ApiException):
        status = getattr(err, "status", None) or 0
        after = retry_after_seconds(err)
        if status == 429 or (after is not None and 500 <= status <= 599):
            wait = policy.backoff(attempt) if after is None else min(after, policy.retry_after_cap)
            return min(max(wait, policy.base / 2), left)
        if status in RETRY_STATUSES and repeatable:
            return min(policy.backoff(attempt), left)
        return None
    if isinstance(err, Urllib3SSLError) or "CERTIFICATE_VERIFY" in str(err) or not repeatable:
        return None
    return min(policy.backoff(attempt), left)


# --------------------------------------------------------------------------------------------- probe namespace
def probe_namespace_name(check_id, rng=None):
    """`aic-<id>-<rand>`: DNS-1123, under 63 characters, random suffix so parallel runs never collide."""
    rng = rng or random.SystemRandom()
    suffix = "".join(rng.choice(string.ascii_lowercase + string.digits) for dummy in range(5))
    return "aic-%s-%s" % (check_id.replace("_", "-")[:48], suffix)


def machine_id():
    """A stable, anonymous id of this machine and boot (None when /proc is not there)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
    except OSError:
        return None
    return hashlib.sha256(("%s/%s" % (socket.gethostname(), boot)).encode()).hexdigest()[:16]


def process_start(pid):
    """The start time of process `pid` in clock ticks since boot, or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % int(pid), encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError, ValueError):
        return None


def owner_id(pid=None):
    """This process as OWNER_ANNOTATION records it ("" when it cannot be identified)."""
    pid = os.getpid() if pid is None else pid
    machine, start = machine_id(), process_start(pid)
    return "%s/%d/%s" % (machine, pid, start) if machine and start else ""


def owner_gone(owner):
    """True only when `owner` names a process of this machine and boot that no longer runs (the pid is
    free or now belongs to a process started at another time). Unknown or foreign owners: False."""
    parts = str(owner or "").split("/")
    if len(parts) != 3 or not parts[1].isdigit() or parts[0] != machine_id():
        return False
    return process_start(int(parts[1])) != parts[2]


def is_leftover(namespace, now, gone=owner_gone):
    """Is this labelled namespace an earlier run's leftover? When its deadline annotation says the run
    is over (plus a grace period), or at once when `gone(owner annotation)` says the process that created
    it no longer runs (an interrupted or killed run on this machine). Live runs, and namespaces without a
    readable deadline, are never leftovers; nor are those already being deleted."""
    meta = namespace.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return False
    if meta.get("deletionTimestamp"):
        return False
    annotations = meta.get("annotations") or {}
    deadline = parse_rfc3339(annotations.get(DEADLINE_ANNOTATION))
    if deadline is None:
        return False
    return deadline + LEFTOVER_GRACE_SECONDS < now or bool(gone and annotations.get(OWNER_ANNOTATION)
                                                           and gone(annotations[OWNER_ANNOTATION]))


def sweep_leftovers(cluster, now=None):
    """Delete probe namespaces left by interrupted earlier runs; returns their names."""
    now = time.time() if now is None else now
    selector = "%s=%s" % (MANAGED_BY_LABEL, MANAGED_BY_VALUE)
    swept = []
    for namespace in cluster.list("v1", "namespaces", label_selector=selector):
        if is_leftover(namespace, now):
            if cluster.delete("v1", "namespaces", namespace["metadata"]["name"]):
                swept.append(namespace["metadata"]["name"])
    return swept


class shielded(object):
    """While an interrupted probe deletes its namespace, further SIGTERM/SIGINT (a second signal from
    Ansible's worker, the output watch, an impatient Ctrl-C) are recorded in `pending` and otherwise
    ignored, so the DELETE is sent (the run is already unwinding from the first signal). Only in the main
    thread, and only when `active`; the DELETE retries for at most 15 s."""

    def __init__(self, active=True):
        self.active = active and threading.current_thread() is threading.main_thread()
        self.saved = {}
        self.pending = []

    def __enter__(self):
        if self.active:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.saved[signum] = signal.signal(signum, lambda num, frame: self.pending.append(num))
        return self

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)
        return False


class ProbeNamespace(object):
    """A fresh namespace for one check's probes, deleted on exit whatever happened.

    Use as a context manager. On exit (normal return, exception, KeyboardInterrupt or SIGTERM) it
    deletes the namespace and waits, bounded, until it is gone; cleanup problems are recorded in
    `cleanup_note` instead of hiding the original error. `swept` lists leftovers of earlier runs removed
    on entry.
    """

    def __init__(self, cluster, check_id, deadline, sleep=1.0, cleanup_timeout=120, sweep=True):
        self.cluster = cluster
        self.check_id = check_id
        self.deadline = deadline
        self.sleep = sleep
        self.cleanup_timeout = cleanup_timeout
        self.sweep = sweep
        self.name = probe_namespace_name(check_id)
        self.swept = []
        self.created = False
        self.cleanup_note = ""
        self._old_sigterm = None
        self._stop_watch = None

    def manifest(self):
        return {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {
                "name": self.name,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, CHECK_LABEL: self.check_id.replace("_", "-")},
                "annotations": {STARTED_ANNOTATION: rfc3339(self.deadline.wall_started),
                                DEADLINE_ANNOTATION: rfc3339(self.deadline.wall_deadline),
                                OWNER_ANNOTATION: owner_id()},
            },
        }

    def __enter__(self):
        if self.sweep:
            self.swept = sweep_leftovers(self.cluster)
            self._await_swept()
        self.require_cleanup_rights()
        self._trap_sigterm()
        self.cluster.owned_namespaces.add(self.name)
        try:
            self.cluster.create("v1", "namespaces", self.manifest())
            self.created = True
        except BaseException as err:
            if not isinstance(err, ClusterError):   # interrupted while creating: it may exist now
                self.created = True
                with shielded(True):
                    self._delete(wait=False)
                self.describe_cleanup(err)
            self._restore_sigterm()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        interrupted = exc is not None and not isinstance(exc, Exception)
        try:
            if self.created:
                with shielded(interrupted):
                    self._delete(wait=not interrupted)
                self.describe_cleanup(exc)
        finally:
            self._restore_sigterm()
        return False

    def require_cleanup_rights(self):
        """Never create what cannot be cleaned up: ask the API server (SelfSubjectAccessReview) whether
        this user may delete and get namespaces, and raise ForbiddenError naming the rule if not. When the
        review itself is not allowed, the answer is unknown and the probe goes ahead."""
        for verb in ("delete", "get"):
            review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                      "spec": {"resourceAttributes": {"verb": verb, "resource": "namespaces", "name": self.name}}}
            try:
                answer = self.cluster.create("authorization.k8s.io/v1", "selfsubjectaccessreviews", review)
            except (ForbiddenError, MissingApiError, NotFoundError):
                return
            if not (answer.get("status") or {}).get("allowed"):
                rule = missing_rule("v1", "namespaces", verb)
                raise ForbiddenError("the user may not %s namespaces, so the probe namespace could not be cleaned up; "
                                     "nothing was created. The user lacks the RBAC rule %s; bind the ClusterRole "
                                     "from %s (files/rbac/) that matches the mode you run, or grant that rule"
                                     % (verb, json.dumps(rule, sort_keys=True), RBAC_DOC), rule=rule)

    def _await_swept(self):
        """Leftover probes may still run (a killed run's load pod holds its accelerator): wait, bounded,
        until the swept namespaces are gone so they cannot skew this run's measurements."""
        if not self.swept:
            return
        names = list(self.swept)
        try:
            wait_until("leftover probe namespaces %s to be deleted" % ", ".join(names),
                       lambda: [n for n in names if self.cluster.get("v1", "namespaces", n) is not None],
                       lambda remaining: not remaining, self.deadline.bound(min(60, self.cleanup_timeout)), self.sleep)
        except WaitTimeout as err:
            self.cleanup_note = "leftovers of an earlier run were still terminating when probes started: %s" % err

    def describe_cleanup(self, exc):
        """Tell an interruption what happened to the probe namespace (run_check reports it)."""
        if exc is not None and not isinstance(exc, Exception):
            exc.cleanup = self.cleanup_note or ("the probe namespace %s was deleted (the cluster removes what was in "
                                                "it)" % self.name)

    def _delete(self, wait=True):
        saved = self.cluster.retry
        # cleanup must not hang on an API that is gone: each request retries for at most 15 s
        self.cluster.retry = RetryPolicy(saved.attempts, saved.base, saved.cap, saved.retry_after_cap,
                                         min(saved.budget, 15.0), saved.rng)
        try:
            self._delete_namespace(wait)
        finally:
            self.cluster.retry = saved

    def _delete_namespace(self, wait):
        try:
            self.cluster.delete("v1", "namespaces", self.name)
            if not wait:    # interrupted: the API server finishes the deletion; exit now
                return
            wait_until("namespace %s to be deleted" % self.name,
                       lambda: self.cluster.get("v1", "namespaces", self.name), lambda ns: ns is None,
                       self.cleanup_timeout, self.sleep)
        except WaitTimeout:
            self.cleanup_note = ("probe namespace %s was deleted but is still terminating after %ss; the cluster "
                                 "will finish removing it" % (self.name, self.cleanup_timeout))
        except ClusterError as err:
            self.cleanup_note = ("could not delete probe namespace %s: %s. Delete it by hand (kubectl delete "
                                 "namespace %s); later runs also remove it once its deadline has passed"
                                 % (self.name, err, self.name))

    def _trap_sigterm(self):
        if threading.current_thread() is not threading.main_thread():
            return
        orphaned = threading.Event()

        def _raise(signum, frame):
            if orphaned.is_set():
                raise ProbeInterrupted("the Ansible task that ran this module went away during a probe (task timeout "
                                       "or an interrupted controller)")
            raise ProbeInterrupted("terminated by signal %d during a probe" % signum)
        self._old_sigterm = signal.signal(signal.SIGTERM, _raise)
        self._stop_watch = watch_output_reader(orphaned)

    def _restore_sigterm(self):
        if self._stop_watch is not None:
            self._stop_watch.set()
            self._stop_watch = None
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None


def watch_output_reader(orphaned, fd=1, interval_ms=500):
    """When our stdout is a pipe (how Ansible runs modules), watch it in a daemon thread: once nobody reads
    it any more (Ansible's task timeout abandons the module; a killed worker), set `orphaned` and send
    ourselves SIGTERM so the probe stops and cleans up now instead of running to its end unseen.
    Returns an Event that stops the watch, or None when stdout is not a pipe."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        poller = select.poll()
        poller.register(fd, 0)       # a pipe's write end reports POLLERR once no reader is left
    except (OSError, ValueError, AttributeError):
        return None
    stop = threading.Event()

    def run():
        while not stop.is_set():
            if any(events & (select.POLLERR | select.POLLHUP) for dummy, events in poller.poll(interval_ms)):
                if not stop.is_set():
                    orphaned.set()
                    os.kill(os.getpid(), signal.SIGTERM)
                return
    threading.Thread(target=run, name="k8s-ai-conformance-output-watch", daemon=True).start()
    return stop
