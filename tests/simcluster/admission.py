"""Dynamic admission: calls Mutating/ValidatingWebhookConfigurations the way kube-apiserver does.

For every webhook whose rules, namespaceSelector and objectSelector match a request, the server sends a
real admission.k8s.io/v1 AdmissionReview (JSON) to the webhook's Service through the simulated
runtime (`sim.runtime.http` on a ready endpoint pod) and honours the answer: a denial becomes the real
"admission webhook ... denied the request" error, a mutating webhook's JSONPatch is applied, and a
webhook that cannot be called follows its failurePolicy (Fail: 500 `failed calling webhook "<name>": ...`;
Ignore: the request goes on). Webhooks with a `url` cannot be reached (no real network) and count as
failed calls. matchConditions (CEL) are not evaluated: they are treated as matching.
"""
from __future__ import annotations

import base64
import json
import uuid

import jsonpatch

from .errors import ApiError
from .routing import RouteError, resolve_service, service_url
from .selectors import label_selector_predicate

ADMISSION = "admissionregistration.k8s.io"


class CallError(Exception):
    """A webhook could not be called or answered nonsense."""


def _rule_matches(rule, operation, group, version, resource, subresource, namespaced):
    ops = rule.get("operations") or []
    if "*" not in ops and operation not in ops:
        return False
    if not _in(rule.get("apiGroups"), group) or not _in(rule.get("apiVersions"), version):
        return False
    scope = rule.get("scope", "*")
    if scope == "Cluster" and namespaced or scope == "Namespaced" and not namespaced:
        return False
    combined = resource + ("/" + subresource if subresource else "")
    for entry in rule.get("resources") or []:
        if entry == combined or entry == "*/*":
            return True
        if entry == "*" and not subresource:
            return True
        if "/" in entry:
            res, sub = entry.split("/", 1)
            if subresource and (res in ("*", resource)) and (sub in ("*", subresource)):
                return True
    return False


def _in(values, value):
    values = values or []
    return "*" in values or value in values


class Admission(object):
    def __init__(self, sim):
        self.sim = sim
        self.store = sim.store

    def _hooks(self, resource):
        gr = (ADMISSION, resource)
        if gr not in self.store.types:
            return []
        hooks = []
        for config in sorted(self.store.list(gr)[0], key=lambda c: c["metadata"]["name"]):
            hooks.extend(config.get("webhooks") or [])
        return hooks

    def _namespace_labels(self, ctx, obj):
        if ctx.rtype.gr == ("", "namespaces"):
            return (obj or {}).get("metadata", {}).get("labels") or {}
        namespace = ctx.namespace
        if not namespace:
            return None
        ns = self.store.try_get(("", "namespaces"), None, namespace)
        return (ns or {}).get("metadata", {}).get("labels") or {}

    def _matching(self, resource, ctx, operation, obj, old):
        rtype = ctx.rtype
        out = []
        for hook in self._hooks(resource):
            if not any(_rule_matches(rule, operation, rtype.group, ctx.version, rtype.resource, ctx.subresource or "",
                                     rtype.namespaced) for rule in hook.get("rules") or []):
                continue
            ns_labels = self._namespace_labels(ctx, obj or old)
            if ns_labels is not None and not label_selector_predicate(hook.get("namespaceSelector") or {})(ns_labels):
                continue
            object_pred = label_selector_predicate(hook.get("objectSelector") or {})
            labels = [((o or {}).get("metadata") or {}).get("labels") or {} for o in (obj, old) if o is not None]
            if labels and not any(object_pred(lbl) for lbl in labels):
                continue
            out.append(hook)
        return out

    # ------------------------------------------------------------------------------- entry points
    def mutate(self, ctx, operation, obj, old):
        """Run matching mutating webhooks; returns the (possibly patched) stored-form object."""
        for hook in self._matching("mutatingwebhookconfigurations", ctx, operation, obj, old):
            response = self._review(hook, ctx, operation, obj, old)
            if response is None:
                continue
            patch = response.get("patch")
            if patch:
                versioned = ctx.rtype.convert_out(obj, ctx.version)
                try:
                    patched = jsonpatch.apply_patch(versioned, json.loads(base64.b64decode(patch)))
                except (ValueError, jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                    raise ApiError.internal('failed calling webhook "%s": the webhook returned an invalid patch: %s'
                                            % (hook["name"], exc))
                obj = ctx.rtype.convert_in(patched, ctx.version)
        return obj

    def has_validating(self, ctx, operation, obj, old):
        return bool(self._matching("validatingwebhookconfigurations", ctx, operation, obj, old))

    def validate(self, ctx, operation, obj, old):
        for hook in self._matching("validatingwebhookconfigurations", ctx, operation, obj, old):
            self._review(hook, ctx, operation, obj, old)

    def validate_delete(self, ctx, current):
        self.validate(ctx, "DELETE", None, current)

    # ------------------------------------------------------------------------------- calls
    def _review(self, hook, ctx, operation, obj, old):
        """Call one webhook; returns its response, None when ignored; raises the real errors."""
        request_uid = str(uuid.uuid4())
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": self._request(request_uid, ctx, operation, obj, old)}
        try:
            response = self._call(hook, review, request_uid)
        except CallError as exc:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                self.sim.log('webhook "%s" failed and is ignored: %s' % (hook["name"], exc))
                return None
            raise ApiError.internal('failed calling webhook "%s": %s' % (hook["name"], exc))
        if not response.get("allowed"):
            raise _denied(hook["name"], response.get("status") or {}, ctx)
        ctx.warnings.extend(response.get("warnings") or [])
        return response

    def _request(self, uid, ctx, operation, obj, old):
        rtype = ctx.rtype
        gvk = {"group": rtype.group, "version": ctx.version, "kind": rtype.kind}
        gvr = {"group": rtype.group, "version": ctx.version, "resource": rtype.resource}
        meta = (obj or old or {}).get("metadata") or {}
        options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}[operation]
        request = {"uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
                   "name": meta.get("name", ""), "operation": operation,
                   "userInfo": {"username": ctx.user["username"], "uid": ctx.user.get("uid", ""),
                                "groups": ctx.user["groups"]},
                   "object": rtype.convert_out(obj, ctx.version) if obj is not None else None,
                   "oldObject": rtype.convert_out(old, ctx.version) if old is not None else None,
                   "dryRun": bool(ctx.dry_run),
                   "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind}}
        if ctx.subresource:
            request["subResource"] = ctx.subresource
            request["requestSubResource"] = ctx.subresource
        if rtype.namespaced:
            request["namespace"] = meta.get("namespace") or ctx.namespace or ""
        return request

    def _call(self, hook, review, request_uid):
        config = hook.get("clientConfig") or {}
        if config.get("url"):
            raise CallError('failed to call webhook: Post "%s": dial tcp: lookup %s: no such host (the simulated '
                            'cluster has no network)' % (config["url"], config["url"].split("/")[2]))
        service = config.get("service") or {}
        namespace, name, port = service.get("namespace"), service.get("name"), service.get("port", 443)
        path = service.get("path") or "/"
        timeout = hook.get("timeoutSeconds", 10)
        where = '%s?timeout=%ds' % (service_url(namespace, name, port, path), timeout)
        hung = self.sim.faults.webhook_timeout(hook) if getattr(self.sim, "faults", None) else None
        if hung:
            raise CallError('failed to call webhook: Post "%s": %s' % (where, hung))
        try:
            pod, target_port = resolve_service(self.store, namespace, name, port)
        except RouteError as exc:
            raise CallError('failed to call webhook: Post "%s": %s' % (where, exc))
        versions = hook.get("admissionReviewVersions") or ["v1"]
        if "v1" not in versions:
            review["apiVersion"] = "admission.k8s.io/v1beta1"
        status, _unused, body = self.sim.runtime.http(
            pod, target_port, "POST", path, "timeout=%ds" % timeout,
            {"Content-Type": "application/json", "Accept": "application/json"}, json.dumps(review).encode())
        if status != 200:
            raise CallError('failed to call webhook: an error on the server ("%s") has prevented the request from '
                            'succeeding' % (body or b"").decode(errors="replace").strip()[:200])
        try:
            answer = json.loads(body)
            response = answer["response"]
        except (ValueError, KeyError, TypeError):
            raise CallError("received invalid webhook response: the response is not an AdmissionReview")
        if response.get("uid") != request_uid:
            raise CallError('expected response.uid="%s", got "%s"' % (request_uid, response.get("uid")))
        return response


def _denied(name, status, ctx):
    """The error for a webhook's denial (webhook/errors.ToStatusErr)."""
    message = status.get("message") or ""
    reason = status.get("reason") or ""
    prefix = 'admission webhook "%s" denied the request' % name
    if message:
        text = "%s: %s" % (prefix, message)
    elif reason:
        text = "%s: %s" % (prefix, reason)
    else:
        text = "%s without explanation" % prefix
    code = int(status.get("code") or 403)
    details = status.get("details") or {"kind": ctx.rtype.resource, "name": ctx.name or ""}
    if ctx.rtype.group and "group" not in details:
        details["group"] = ctx.rtype.group
    return ApiError(code if code >= 400 else 400, reason or ("Forbidden" if code == 403 else ""), text, details)
