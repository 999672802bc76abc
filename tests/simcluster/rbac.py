"""Authentication (bearer tokens) and RBAC authorisation, evaluated as kube-apiserver's RBAC authorizer.

Users come from the scenario (`users: [{name, token, groups}]`) plus tokens issued through the
serviceaccounts/token subresource (TokenRequest). Every authenticated user is in the group
`system:authenticated`; a request without a known token gets 401.

Authorisation walks ClusterRoleBindings and the namespace's RoleBindings whose subjects match the
user (User, Group, ServiceAccount), and the rules of the roles they reference (aggregated ClusterRoles
take the rules of every ClusterRole their aggregationRule selects). `system:masters` bypasses RBAC,
as the real superuser authorizer does.
"""
from __future__ import annotations

import secrets
import threading

from .errors import ApiError
from .selectors import label_selector_predicate

RBAC = "rbac.authorization.k8s.io"
SA_PREFIX = "system:serviceaccount:"


class Authenticator(object):
    """Bearer token -> user info {username, uid, groups}."""

    def __init__(self, sim):
        self.sim = sim
        self._issued = {}          # token -> user info (TokenRequest)
        self._lock = threading.Lock()

    def authenticate(self, header):
        """The user for an `Authorization` header value; raises 401 when it names nobody."""
        if not header or not header.lower().startswith("bearer "):
            raise ApiError.unauthorized()
        token = header[7:].strip()
        for user in self.sim.users:
            if secrets.compare_digest(str(user["token"]), token):
                groups = list(user.get("groups") or [])
                if "system:authenticated" not in groups:
                    groups.append("system:authenticated")
                return {"username": user["name"], "uid": user.get("uid", ""), "groups": groups}
        with self._lock:
            issued = self._issued.get(token)
        if issued is None:
            raise ApiError.unauthorized()
        return dict(issued)

    def issue_service_account_token(self, namespace, name, uid):
        """A TokenRequest: a new opaque token that authenticates as the service account."""
        token = "sim-sa." + secrets.token_urlsafe(24)
        info = {"username": "%s%s:%s" % (SA_PREFIX, namespace, name), "uid": uid,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:%s" % namespace,
                           "system:authenticated"]}
        with self._lock:
            self._issued[token] = info
        return token

    def review(self, token):
        """TokenReview: user info for a token, or None."""
        try:
            return self.authenticate("Bearer " + token)
        except ApiError:
            return None


def _subject_matches(subject, user, binding_namespace):
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user["username"]
    if kind == "Group":
        return subject.get("name") in user["groups"]
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user["username"] == "%s%s:%s" % (SA_PREFIX, namespace, subject.get("name"))
    return False


def _has(values, value):
    values = values or []
    return "*" in values or value in values


def rule_allows(rule, attrs):
    """Does one PolicyRule allow the request attributes (verb, group, resource, subresource, name | path)?"""
    if not _has(rule.get("verbs"), attrs["verb"]):
        return False
    if "path" in attrs:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == attrs["path"] or (url.endswith("*") and attrs["path"].startswith(url[:-1])):
                return True
        return False
    if not rule.get("resources") or not _has(rule.get("apiGroups"), attrs["group"]):
        return False
    combined = attrs["resource"] + ("/" + attrs["subresource"] if attrs.get("subresource") else "")
    resources = rule.get("resources") or []
    if not ("*" in resources or combined in resources or
            (attrs.get("subresource") and "*/" + attrs["subresource"] in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.get("name") in names


class Authorizer(object):
    """RBAC over the roles and bindings in the store."""

    def __init__(self, store):
        self.store = store

    def _list(self, resource, namespace=None):
        gr = (RBAC, resource)
        if gr not in self.store.types:
            return []
        return self.store.list(gr, namespace=namespace)[0]

    def cluster_role_rules(self, name, seen=None):
        """Rules of a ClusterRole, following aggregationRule selectors (with a cycle guard)."""
        seen = set() if seen is None else seen
        if name in seen:
            return []
        seen.add(name)
        role = self.store.try_get((RBAC, "clusterroles"), None, name) if (RBAC, "clusterroles") in self.store.types \
            else None
        if role is None:
            return None
        aggregation = role.get("aggregationRule")
        if not aggregation:
            return list(role.get("rules") or [])
        rules = []
        selectors = [label_selector_predicate(s) for s in aggregation.get("clusterRoleSelectors") or []]
        for other in self._list("clusterroles"):
            other_name = other["metadata"]["name"]
            if other_name != name and any(sel(other["metadata"].get("labels")) for sel in selectors):
                rules.extend(self.cluster_role_rules(other_name, seen) or [])
        return rules

    def _role_rules(self, ref, namespace):
        if ref.get("kind") == "ClusterRole":
            return self.cluster_role_rules(ref.get("name"))
        role = self.store.try_get((RBAC, "roles"), namespace, ref.get("name"))
        return None if role is None else list(role.get("rules") or [])

    def _applicable(self, user, namespace):
        """Yield (binding description, role description, rules) for bindings that name the user."""
        bindings = [("ClusterRoleBinding", b, None) for b in self._list("clusterrolebindings")]
        if namespace:
            bindings += [("RoleBinding", b, namespace) for b in self._list("rolebindings", namespace)]
        for kind, binding, ns in bindings:
            subjects = [s for s in binding.get("subjects") or [] if _subject_matches(s, user, ns)]
            if not subjects:
                continue
            ref = binding.get("roleRef") or {}
            rules = self._role_rules(ref, ns)
            if rules is None:
                continue
            where = ' in namespace "%s"' % ns if ns else ""
            subject = subjects[0]
            why = 'RBAC: allowed by %s "%s" of %s "%s" to %s "%s"%s' % (
                kind, binding["metadata"]["name"], ref.get("kind"), ref.get("name"), subject.get("kind"),
                subject.get("name"), where)
            yield why, rules

    def authorize(self, user, attrs):
        """(allowed, reason) for request attributes; attrs has verb and either path or group/resource/..."""
        if "system:masters" in user["groups"]:
            return True, ""
        for why, rules in self._applicable(user, attrs.get("namespace")):
            if any(rule_allows(rule, attrs) for rule in rules):
                return True, why
        return False, ""

    def check(self, user, attrs):
        """Raise the real 403 Forbidden when RBAC denies the request."""
        allowed, _unused = self.authorize(user, attrs)
        if allowed:
            return
        if "path" in attrs:
            raise ApiError.forbidden_path(user["username"], attrs["verb"], attrs["path"])
        raise ApiError.forbidden(user["username"], attrs["verb"], attrs["group"], attrs["resource"],
                                 attrs.get("namespace") or None, attrs.get("name") or None, attrs.get("subresource"))

    def rules_review(self, user, namespace):
        """SelfSubjectRulesReview status: every rule that applies to the user in `namespace`."""
        resource_rules, non_resource_rules = [], []
        if "system:masters" in user["groups"]:
            resource_rules.append({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
            non_resource_rules.append({"verbs": ["*"], "nonResourceURLs": ["*"]})
        for _unused, rules in self._applicable(user, namespace):
            for rule in rules:
                if rule.get("nonResourceURLs"):
                    non_resource_rules.append({"verbs": rule.get("verbs") or [],
                                               "nonResourceURLs": rule["nonResourceURLs"]})
                else:
                    entry = {"verbs": rule.get("verbs") or [], "apiGroups": rule.get("apiGroups") or [],
                             "resources": rule.get("resources") or []}
                    if rule.get("resourceNames"):
                        entry["resourceNames"] = rule["resourceNames"]
                    resource_rules.append(entry)
        return {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}


def review_attributes(spec):
    """A SubjectAccessReview spec -> request attributes for `authorize`."""
    if spec.get("nonResourceAttributes"):
        nra = spec["nonResourceAttributes"]
        return {"verb": nra.get("verb", ""), "path": nra.get("path", "")}
    ra = spec.get("resourceAttributes") or {}
    return {"verb": ra.get("verb", ""), "group": ra.get("group", ""), "resource": ra.get("resource", ""),
            "subresource": ra.get("subresource", ""), "namespace": ra.get("namespace", ""), "name": ra.get("name", "")}


def review_user(spec):
    """The user a SubjectAccessReview asks about."""
    groups = list(spec.get("groups") or [])
    return {"username": spec.get("user", ""), "uid": spec.get("uid", ""), "groups": groups}
