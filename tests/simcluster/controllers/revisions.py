"""ControllerRevisions for DaemonSets and StatefulSets (the revision history `kubectl rollout` reads)."""
from __future__ import annotations

from ..errors import ApiError
from . import podutil

CONTROLLER_REVISIONS = ("apps", "controllerrevisions")
REVISION_LABEL = "controller-revision-hash"


def ensure_revision(controller, owner, kind, template):
    """Create (once) the ControllerRevision `<owner>-<hash>` for `template`; return the hash.

    Its revision number is one more than the highest existing one of the owner; a template that
    comes back (rollback) keeps its revision object. Without the type served, only the hash counts.
    """
    pod_hash = podutil.template_hash(template)
    if not controller.served(CONTROLLER_REVISIONS):
        return pod_hash
    name = "%s-%s" % (owner["metadata"]["name"], pod_hash)
    namespace = owner["metadata"]["namespace"]
    if controller.read(CONTROLLER_REVISIONS, namespace, name) is not None:
        return pod_hash
    existing = controller.owned(owner, CONTROLLER_REVISIONS)
    revision = max([int(r.get("revision") or 0) for r in existing] + [0]) + 1
    labels = dict(((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    labels[REVISION_LABEL] = pod_hash
    obj = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
           "metadata": {"name": name, "namespace": namespace, "labels": labels,
                        "ownerReferences": [podutil.owner_reference(owner, "apps/v1", kind)]},
           "data": {"spec": {"template": dict(template, **{"$patch": "replace"})}},
           "revision": revision}
    try:
        controller.store.create(CONTROLLER_REVISIONS, obj)
    except ApiError as exc:
        if exc.code != 409:
            raise
    return pod_hash
