"""kube-scheduler (the `default-scheduler` profile), as far as placement decisions and their messages go.

Pods whose `spec.schedulerName` names another scheduler stay Pending untouched, as they do on a real
cluster where that scheduler is not running. For the others, each node runs through the filters in
the real plugin order, stopping at the first failure per node:

  NodeUnschedulable -> TaintToleration -> NodeAffinity -> NodeResourcesFit -> InterPodAffinity ->
  registered plugins (for example DRA claim allocation)

Nodes whose Ready condition is not True carry the `node.kubernetes.io/not-ready` (or `unreachable`)
NoSchedule taint that the node lifecycle controller adds. Feasible nodes are scored (least allocated,
preferred node affinity, spreading a controller's pods, preferred pod (anti-)affinity) and the best is
bound. When no node fits, the pod gets PodScheduled=False/Unschedulable with the real FitError text,
for example:

  0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint
  {nvidia.com/gpu: present}. preemption: 0/3 nodes are available: 1 No preemption victims found for
  incoming pod, 2 Preemption is not helpful for scheduling.

and a FailedScheduling event; it is retried when nodes change, pods go away or a plugin asks.
Preemption itself is not modelled (nothing is ever evicted).

Plugins: `register_plugin(plugin)` with `filter(pod, node) -> reason or None` and
`reserve(pod, node)`; optional `pre_filter(pod) -> message or None` (the pod cannot be scheduled
anywhere, e.g. a missing ResourceClaim), `unreserve(pod, node)` and `score(pod, node) -> int`.
"""
from __future__ import annotations

import collections
import copy

from ..errors import ApiError
from ..selectors import label_selector_predicate
from . import podutil
from .manager import NAMESPACES, NODES, PODS, Controller

SCHEDULER_NAME = "default-scheduler"
FLUSH = ("", "__retry-unschedulable__")
UNSCHEDULABLE_RETRY = 300.0          # podMaxInUnschedulablePodsDuration
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
HOSTNAME = "kubernetes.io/hostname"
AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"


def _pod_key(obj):
    return (obj["metadata"].get("namespace") or "", obj["metadata"]["name"])


def _pending(pod):
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and not pod["metadata"].get("deletionTimestamp")
            and not podutil.is_terminal(pod))


def _anti_affinity_terms(pod):
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    return (affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []


class Scheduler(Controller):
    name = "scheduler"

    def __init__(self, manager):
        super().__init__(manager)
        self.index = manager.index
        self.plugins = []
        self.routes = {PODS: self._on_pod, NODES: self._on_node}
        self._usage = collections.defaultdict(dict)     # node -> {resource: Decimal}
        self._pod_usage = {}                              # pod key -> (node, requests, owner uid)
        self._owned_on_node = collections.Counter()       # (owner uid, node) -> pods (for spreading)
        self.anti_affinity_pods = set()                           # bound pod keys with required anti-affinity
        self._parked = set()                              # unschedulable pod keys
        self._node_list = None                            # cached node list, dropped on node events
        self._next_start = 0

    # ----------------------------------------------------------------------------- public API
    def register_plugin(self, plugin):
        """Add a filter/reserve plugin (runs after the built-in filters) and retry parked pods."""
        self.plugins.append(plugin)
        self.retry()

    def retry(self):
        """Move every unschedulable pod back to the queue (a plugin's state changed)."""
        self.enqueue(FLUSH)

    def owned_on_node(self, owner_uid, node_name):
        """Pods of one controller on a node (the spreading score: fewer is better)."""
        return self._owned_on_node.get((owner_uid, node_name), 0)

    def node_usage(self, node_name):
        """{resource: Decimal} requested by the non-terminal pods bound to the node (plus "pods")."""
        with self.store.lock:
            return dict(self._usage.get(node_name, {}))

    # ----------------------------------------------------------------------------- event handlers
    def initial_keys(self):
        keys = []
        for pod in self.store.list(PODS)[0]:
            self._account(None, pod)
            if _pending(pod):
                keys.append(_pod_key(pod))
        return keys

    def _on_pod(self, event):
        old, new = event.old, (event.obj if event.type != "DELETED" else None)
        freed = self._account(old, new)
        if new is not None and _pending(new):
            if old is None or old.get("spec") != new.get("spec") or \
                    old["metadata"].get("labels") != new["metadata"].get("labels"):
                self.enqueue(_pod_key(new))
        elif new is None:
            self._parked.discard(_pod_key(event.obj))
        if freed and self._parked:
            self.enqueue(FLUSH)

    def _on_node(self, event):
        self._node_list = None
        if self._parked:
            self.enqueue(FLUSH)
        if event.type == "DELETED":
            self._usage.pop(event.obj["metadata"]["name"], None)

    def _account(self, old, new):
        """Keep per-node requested resources current; True when resources were released."""
        key = _pod_key(new if new is not None else old)
        before = self._pod_usage.pop(key, None)
        if before is not None:
            node, req, owner = before
            usage = self._usage[node]
            for name, value in req.items():
                usage[name] = usage.get(name, podutil.ZERO) - value
            if owner:
                self._owned_on_node[(owner, node)] -= 1
                if self._owned_on_node[(owner, node)] <= 0:
                    del self._owned_on_node[(owner, node)]
        self.anti_affinity_pods.discard(key)
        after = None
        if new is not None and (new.get("spec") or {}).get("nodeName") and not podutil.is_terminal(new):
            node = new["spec"]["nodeName"]
            req = podutil.pod_requests(new)
            req["pods"] = podutil.quantity(1)
            usage = self._usage[node]
            for name, value in req.items():
                usage[name] = usage.get(name, podutil.ZERO) + value
            ref = podutil.controller_ref(new)
            owner = ref.get("uid") if ref else None
            if owner:
                self._owned_on_node[(owner, node)] += 1
            after = (node, req, owner)
            self._pod_usage[key] = after
            if _anti_affinity_terms(new):
                self.anti_affinity_pods.add(key)
        return before is not None and (after is None or after[0] != before[0])

    # ----------------------------------------------------------------------------- the cycle
    def reconcile(self, key):
        if key == FLUSH:
            with self.store.lock:
                parked, self._parked = self._parked, set()
            for pod_key in parked:
                self.enqueue(pod_key)
            return
        pod = self.read(PODS, *key)
        if pod is None or not _pending(pod):
            self._parked.discard(key)
            return
        if (pod.get("spec") or {}).get("schedulerName", SCHEDULER_NAME) != SCHEDULER_NAME:
            return
        if (pod.get("spec") or {}).get("schedulingGates"):
            self._set_unschedulable(pod, "SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates",
                                    event=False)
            return
        named = _named_nodes(pod)
        if named is not None:
            # NodeAffinity PreFilter: a metadata.name affinity (DaemonSet pods) names the only candidates
            nodes = [n for n in (self.read(NODES, "", name) for name in sorted(named)) if n is not None]
            node, message = self._find_node(pod, nodes, self.store.count(NODES))
        else:
            nodes = self._nodes()
            node, message = self._find_node(pod, nodes, len(nodes))
        if node is None:
            self._parked.add(key)
            self._set_unschedulable(pod, "Unschedulable", message, event=True)
            self.enqueue_after(UNSCHEDULABLE_RETRY, FLUSH)
            return
        self._bind(pod, node)

    def _nodes(self):
        """All nodes, listed again only after a node event (the store's list is O(nodes))."""
        with self.store.lock:
            if self._node_list is None:
                self._node_list = self.store.list(NODES)[0]
            return self._node_list

    def _find_node(self, pod, nodes, total):
        """(node, None) for the best feasible node among `nodes`, or (None, FitError message); `total`
        counts every node of the cluster (those left out failed the node-name affinity)."""
        if not total:
            return None, "no nodes available to schedule pods"
        for plugin in self.plugins:
            pre = getattr(plugin, "pre_filter", None)
            message = pre(pod) if pre is not None else None
            if message:
                return None, "0/%d nodes are available: %s. preemption: 0/%d nodes are available: %d %s." % (
                    total, message, total, total, NOT_HELPFUL)
        ctx = _AffinityContext(self, pod, nodes)
        ctx.requests = podutil.pod_requests(pod)
        reasons = collections.Counter()
        preempt = collections.Counter()
        feasible = []
        if len(nodes) < total:
            reasons[AFFINITY_MISMATCH] += total - len(nodes)
            preempt[NOT_HELPFUL] += total - len(nodes)
        if not nodes:
            return None, _fit_error(total, reasons, preempt, pod)
        want = _feasible_nodes_to_find(total)
        count = len(nodes)
        start = self._next_start % count
        checked = 0
        for offset in range(count):
            node = nodes[(start + offset) % count]
            checked += 1
            failed, resolvable = self._filter(pod, node, ctx)
            if failed:
                for reason in failed:
                    reasons[reason] += 1
                preempt[NO_VICTIMS if resolvable else NOT_HELPFUL] += 1
                continue
            feasible.append(node)
            if len(feasible) >= want:
                break
        self._next_start = (start + checked) % count
        if not feasible:
            return None, _fit_error(total, reasons, preempt, pod)
        best = max(feasible, key=lambda n: self._score(pod, n, ctx))
        return best, None

    def _filter(self, pod, node, ctx):
        """([reasons], resolvable) for a node that fails, ([], True) for one that fits."""
        spec = pod.get("spec") or {}
        tolerations = spec.get("tolerations") or []
        if (node.get("spec") or {}).get("unschedulable") and not podutil.tolerates(
                tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
            return ["node(s) were unschedulable"], False
        taint = podutil.untolerated_taint(tolerations, podutil.effective_taints(node))
        if taint is not None:
            return ["node(s) had untolerated taint {%s: %s}" % (taint.get("key"), taint.get("value") or "")], False
        if not podutil.matches_node_selector_and_affinity(pod, node):
            return [AFFINITY_MISMATCH], False
        insufficient = self._fit(ctx.requests, node)
        if insufficient:
            return insufficient, True
        affinity = ctx.check(node)
        if affinity:
            return [affinity[0]], affinity[1]
        for plugin in self.plugins:
            reason = plugin.filter(pod, node)
            if reason:
                return [reason], bool(getattr(plugin, "resolvable", False))
        return [], True

    def _fit(self, requests, node):
        status = node.get("status") or {}
        allocatable = status.get("allocatable") or status.get("capacity") or {}
        used = self._usage.get(node["metadata"]["name"], {})
        out = []
        if used.get("pods", podutil.ZERO) + 1 > podutil.quantity(allocatable.get("pods", "110")):
            out.append("Too many pods")
        for name, value in sorted(requests.items()):
            if value <= 0:
                continue
            if used.get(name, podutil.ZERO) + value > podutil.quantity(allocatable.get(name, "0")):
                out.append("Insufficient %s" % name)
        return out

    def _score(self, pod, node, ctx):
        status = node.get("status") or {}
        allocatable = status.get("allocatable") or status.get("capacity") or {}
        used = self._usage.get(node["metadata"]["name"], {})
        req = ctx.requests
        free = []
        for name in ("cpu", "memory"):
            cap = podutil.quantity(allocatable.get(name, "0"))
            if cap > 0:
                left = cap - used.get(name, podutil.ZERO) - req.get(name, podutil.ZERO)
                free.append(float(max(left, podutil.ZERO) / cap))
        score = 100.0 * sum(free) / len(free) if free else 0.0
        score += podutil.preferred_node_affinity_score(pod, node)
        score += ctx.preferred_score(node)
        for taint in (node.get("spec") or {}).get("taints") or ():
            if taint.get("effect") == "PreferNoSchedule" and not podutil.tolerates(
                    (pod.get("spec") or {}).get("tolerations"), taint):
                score -= 50
        for plugin in self.plugins:
            scorer = getattr(plugin, "score", None)
            if scorer is not None:
                score += scorer(pod, node) or 0
        return score

    # ----------------------------------------------------------------------------- writes
    def _bind(self, pod, node):
        node_name = node["metadata"]["name"]
        reserved = []
        try:
            for plugin in self.plugins:
                reserve = getattr(plugin, "reserve", None)
                if reserve is not None:
                    reserve(pod, node)
                reserved.append(plugin)
            bound = self.store.update(PODS, dict(pod, spec=dict(pod["spec"], nodeName=node_name)))
        except Exception:
            for plugin in reserved:
                unreserve = getattr(plugin, "unreserve", None)
                if unreserve is not None:
                    unreserve(pod, node)
            raise
        self._parked.discard(_pod_key(pod))
        now = self.clock.timestamp()
        status = bound.setdefault("status", {})      # `bound` is the store's copy: ours to change
        status["conditions"] = podutil.set_condition(status.get("conditions"), "PodScheduled", "True", now=now,
                                                     probe_time=True)
        try:
            bound = self.store.update(PODS, bound, subresource="status")
        except ApiError:
            pass    # the kubelet writes PodScheduled=True as part of its first status too
        self.manager.recorder.event(bound, "Normal", "Scheduled", "Successfully assigned %s/%s to %s" % (
            pod["metadata"]["namespace"], pod["metadata"]["name"], node_name), SCHEDULER_NAME, action="Binding")

    def _set_unschedulable(self, pod, reason, message, event):
        status = dict(pod.get("status") or {})
        status.setdefault("phase", "Pending")
        before = status.get("conditions")
        status["conditions"] = podutil.set_condition(copy.deepcopy(before), "PodScheduled", "False", reason,
                                                     message, now=self.clock.timestamp(), probe_time=True)
        fresh = dict(pod, status=status)
        if status["conditions"] != before:
            self.store.update(PODS, fresh, subresource="status")
        if event:
            self.manager.recorder.event(pod, "Warning", "FailedScheduling", message, SCHEDULER_NAME,
                                        action="Scheduling")


def _named_nodes(pod):
    """Node names a required affinity pins the pod to through metadata.name In (or None)."""
    required = podutil.required_node_affinity(pod) or {}
    names = set()
    for term in required.get("nodeSelectorTerms") or ():
        fields = [f for f in term.get("matchFields") or () if f.get("key") == "metadata.name"
                  and f.get("operator") == "In"]
        if not fields:
            return None
        names.update(fields[0].get("values") or ())
    return names or None


def _feasible_nodes_to_find(total):
    """numFeasibleNodesToFind with the default adaptive percentage (minimum 100 nodes)."""
    if total < 100:
        return total
    percentage = max(5, 50 - total // 125)
    return max(100, total * percentage // 100)


def _fit_error(total, reasons, preempt, pod):
    parts = sorted("%d %s" % (count, reason) for reason, count in reasons.items())
    message = "0/%d nodes are available: %s." % (total, ", ".join(parts))
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return message + " preemption: not eligible due to preemptionPolicy=Never."
    tail = sorted("%d %s" % (count, reason) for reason, count in preempt.items())
    return message + " preemption: 0/%d nodes are available: %s." % (total, ", ".join(tail))


class _AffinityContext(object):
    """Inter-pod affinity for one scheduling attempt: which pods sit in which topology domain."""

    def __init__(self, scheduler, pod, nodes):
        self.scheduler = scheduler
        self.store = scheduler.store
        self.pod = pod
        self.namespace = pod["metadata"]["namespace"]
        affinity = (pod.get("spec") or {}).get("affinity") or {}
        self.required_affinity = (affinity.get("podAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution") or []
        self.required_anti = _anti_affinity_terms(pod)
        self.preferred = [(t, 1) for t in (affinity.get("podAffinity") or {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution") or []]
        self.preferred += [(t, -1) for t in (affinity.get("podAntiAffinity") or {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution") or []]
        self.existing_anti = list(scheduler.anti_affinity_pods)
        self.owner = podutil.controller_ref(pod)
        self.requests = {}
        self.needed = bool(self.required_affinity or self.required_anti or self.preferred or self.existing_anti)
        self._nodes = {n["metadata"]["name"]: n for n in nodes} if self.needed else {}
        self._domains = {}
        self._ns_labels = {}
        self._affinity_has_match = {}

    # -- helpers
    def _domain_nodes(self, key, value):
        domains = self._domains.get(key)
        if domains is None:
            domains = collections.defaultdict(list)
            for name, node in self._nodes.items():
                labels = node["metadata"].get("labels") or {}
                if key in labels:
                    domains[labels[key]].append(name)
            self._domains[key] = domains
        return domains.get(value, [])

    def _pods_on(self, node_names):
        out = []
        for node_name in node_names:
            for ns, name in list(self.scheduler.index.pods_by_node.get(node_name, ())):
                other = self.scheduler.read(PODS, ns, name)
                if other is not None and not podutil.is_terminal(other) and \
                        other["metadata"]["uid"] != self.pod["metadata"].get("uid"):
                    out.append(other)
        return out

    def _term_namespaces(self, term, owner_ns):
        if term.get("namespaceSelector") is not None:
            select = label_selector_predicate(term["namespaceSelector"])
            names = set(term.get("namespaces") or ())
            return lambda ns: ns in names or select(self._namespace_labels(ns))
        names = set(term.get("namespaces") or ()) or {owner_ns}
        return lambda ns: ns in names

    def _namespace_labels(self, ns):
        if ns not in self._ns_labels:
            obj = self.scheduler.read(NAMESPACES, "", ns)
            self._ns_labels[ns] = (obj or {}).get("metadata", {}).get("labels") or {}
        return self._ns_labels[ns]

    def _matches(self, term, owner_ns, pod):
        in_ns = self._term_namespaces(term, owner_ns)
        return in_ns(pod["metadata"].get("namespace")) and \
            label_selector_predicate(term.get("labelSelector"))(pod["metadata"].get("labels"))

    def _domain_pods(self, term, node):
        key = term.get("topologyKey") or HOSTNAME
        labels = node["metadata"].get("labels") or {}
        if key not in labels:
            return None
        if key == HOSTNAME:
            names = self._domain_nodes(key, labels[key]) or [node["metadata"]["name"]]
        else:
            names = self._domain_nodes(key, labels[key])
        return self._pods_on(names)

    # -- filter
    def check(self, node):
        """(reason, resolvable) when inter-pod (anti-)affinity rules out the node, else None."""
        if not self.needed:
            return None
        for term in self.required_anti:
            pods = self._domain_pods(term, node)
            if pods and any(self._matches(term, self.namespace, p) for p in pods):
                return "node(s) didn't match pod anti-affinity rules", True
        for ns, name in self.existing_anti:
            other = self.scheduler.read(PODS, ns, name)
            if other is None or podutil.is_terminal(other):
                continue
            other_node = self._nodes.get(other["spec"].get("nodeName"))
            if other_node is None:
                continue
            for term in _anti_affinity_terms(other):
                key = term.get("topologyKey") or HOSTNAME
                mine = (node["metadata"].get("labels") or {}).get(key)
                theirs = (other_node["metadata"].get("labels") or {}).get(key)
                if mine is not None and mine == theirs and self._matches(term, ns, self.pod):
                    return "node(s) didn't satisfy existing pods anti-affinity rules", True
        for term in self.required_affinity:
            pods = self._domain_pods(term, node)
            if pods and any(self._matches(term, self.namespace, p) for p in pods):
                continue
            if not self._any_match_anywhere(term) and self._matches(term, self.namespace, self.pod):
                continue    # the first pod of a group that selects itself may go anywhere
            return "node(s) didn't match pod affinity rules", False
        return None

    def _any_match_anywhere(self, term):
        ident = id(term)
        if ident not in self._affinity_has_match:
            pods = self._pods_on(list(self._nodes))
            self._affinity_has_match[ident] = any(self._matches(term, self.namespace, p) for p in pods)
        return self._affinity_has_match[ident]

    # -- score
    def preferred_score(self, node):
        score = 0
        for weighted, sign in self.preferred if self.needed else ():
            term = weighted.get("podAffinityTerm") or {}
            pods = self._domain_pods(term, node)
            if pods and any(self._matches(term, self.namespace, p) for p in pods):
                score += sign * int(weighted.get("weight") or 0)
        if self.owner is not None:
            same = self.scheduler.owned_on_node(self.owner.get("uid"), node["metadata"]["name"])
            score -= 10 * same
        return score
