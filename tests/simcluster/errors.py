"""API errors as the real API server reports them: a metav1.Status with code, reason and details."""
from __future__ import annotations


class ApiError(Exception):
    """Raised anywhere in the simulator; the HTTP layer turns it into a Status response."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self):
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body

    # Constructors named after the real StatusReasons (k8s.io/apimachinery/pkg/api/errors).
    @classmethod
    def not_found(cls, group, resource, name):
        qual = resource if not group else "%s.%s" % (resource, group)
        return cls(404, "NotFound", '%s "%s" not found' % (qual, name),
                   {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource})

    @classmethod
    def already_exists(cls, group, resource, name):
        qual = resource if not group else "%s.%s" % (resource, group)
        details = {"name": name, "kind": resource}
        if group:
            details["group"] = group
        return cls(409, "AlreadyExists", '%s "%s" already exists' % (qual, name), details)

    @classmethod
    def conflict(cls, group, resource, name, why):
        qual = resource if not group else "%s.%s" % (resource, group)
        details = {"name": name, "kind": resource}
        if group:
            details["group"] = group
        return cls(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s' % (qual, name, why), details)

    @classmethod
    def invalid(cls, group, kind, name, causes):
        """causes: list of (field, message[, reason]) tuples, as field.ErrorList renders them."""
        qual = kind if not group else "%s.%s" % (kind, group)
        rendered = []
        cause_objs = []
        for cause in causes:
            field, message = cause[0], cause[1]
            reason = cause[2] if len(cause) > 2 else "FieldValueInvalid"
            rendered.append("%s: %s" % (field, message) if field else message)
            cause_objs.append({"reason": reason, "message": "%s: %s" % (field, message) if field else message,
                               "field": field})
        if len(rendered) == 1:
            msg = '%s "%s" is invalid: %s' % (qual, name, rendered[0])
        else:
            msg = '%s "%s" is invalid: [%s]' % (qual, name, ", ".join(rendered))
        details = {"name": name, "kind": kind, "causes": cause_objs}
        if group:
            details["group"] = group
        return cls(422, "Invalid", msg, details)

    @classmethod
    def bad_request(cls, message):
        return cls(400, "BadRequest", message)

    @classmethod
    def forbidden(cls, user, verb, group, resource, namespace=None, name=None, subresource=None):
        res = resource if not subresource else "%s/%s" % (resource, subresource)
        target = 'resource "%s" in API group "%s"' % (res, group)
        where = ' in the namespace "%s"' % namespace if namespace else " at the cluster scope"
        qual = resource if not group else "%s.%s" % (resource, group)
        what = '%s "%s" is forbidden: ' % (qual, name) if name else "%s is forbidden: " % qual
        msg = '%sUser "%s" cannot %s %s%s' % (what, user, verb, target, where)
        details = {"kind": resource}
        if group:
            details["group"] = group
        if name:
            details["name"] = name
        return cls(403, "Forbidden", msg, details)

    @classmethod
    def forbidden_path(cls, user, verb, path):
        """403 for a non-resource URL (/version, /healthz, ...), as the RBAC authorizer words it."""
        return cls(403, "Forbidden", 'forbidden: User "%s" cannot %s path "%s"' % (user, verb, path), {})

    @classmethod
    def gone(cls, message):
        return cls(410, "Expired", message)

    @classmethod
    def unauthorized(cls):
        return cls(401, "Unauthorized", "Unauthorized")

    @classmethod
    def method_not_allowed(cls, message="the server does not allow this method on the requested resource"):
        return cls(405, "MethodNotAllowed", message)

    @classmethod
    def unsupported_media_type(cls, content_type):
        return cls(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                   "accepted media types include: application/json-patch+json, application/merge-patch+json, "
                   "application/apply-patch+yaml, application/strategic-merge-patch+json (got %s)" % content_type)

    @classmethod
    def too_many_requests(cls, retry_after=1):
        return cls(429, "TooManyRequests", "Too many requests, please try again later.",
                   {"retryAfterSeconds": retry_after})

    @classmethod
    def internal(cls, message):
        return cls(500, "InternalError", "Internal error occurred: %s" % message)

    @classmethod
    def service_unavailable(cls, message):
        return cls(503, "ServiceUnavailable", message)
