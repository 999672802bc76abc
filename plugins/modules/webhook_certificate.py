#!/usr/bin/python
# Copyright: (c) 2025, k8s_ai.conformance maintainers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: webhook_certificate
short_description: Keep a self-signed CA and serving certificate for an in-cluster admission webhook
version_added: 0.1.0
author: k8s_ai.conformance maintainers (@k8s-ai-conformance)
description:
  - Returns a CA certificate, a serving certificate signed by it and the serving key, for a webhook
    server reached through a Service (for example the KubeRay operator's validating webhook).
  - Pass the PEMs you already have (for example from the webhook's Secret). While they still fit they are
    kept, with C(changed=false) and the certificates returned unchanged (the key is not returned then); that
    keeps the role idempotent. New ones
    are made when any is missing or unreadable, the key does not match the certificate, the
    certificate was not signed by the CA, a DNS name is not covered, or the certificate expires
    within O(renew_before_days).
  - Runs on the controller and talks to no cluster; the role stores the result in a Secret and
    injects the CA into the webhook configuration. cert-manager can do the same job; see the
    kuberay role's README.
requirements:
  - cryptography (a dependency of ansible-core)
options:
  dns_names:
    description:
      - DNS names the serving certificate must cover, such as C(<service>.<namespace>.svc). The first
        is also the certificate's common name.
    type: list
    elements: str
    required: true
  ca_cert:
    description: Existing CA certificate (PEM).
    type: str
  cert:
    description: Existing serving certificate (PEM).
    type: str
  key:
    description: Existing serving key (PEM, unencrypted).
    type: str
  valid_days:
    description: Lifetime of newly made certificates, in days.
    type: int
    default: 3650
  renew_before_days:
    description: Make new certificates when the serving certificate expires within this many days.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
notes:
  - Run the task with C(no_log=true); the result holds the private key.
"""

EXAMPLES = r"""
- name: KubeRay | Keep the webhook serving certificate
  k8s_ai.conformance.webhook_certificate:
    dns_names:
      - kuberay-webhook-service.kuberay-system.svc
      - kuberay-webhook-service.kuberay-system.svc.cluster.local
    ca_cert: "{{ existing.data['ca.crt'] | default('') | b64decode }}"
    cert: "{{ existing.data['tls.crt'] | default('') | b64decode }}"
    key: "{{ existing.data['tls.key'] | default('') | b64decode }}"
  register: webhook_tls
  no_log: true

- name: KubeRay | Store new certificates
  kubernetes.core.k8s:
    definition:
      apiVersion: v1
      kind: Secret
      type: kubernetes.io/tls
      metadata: {name: kuberay-webhook-server-cert, namespace: kuberay-system}
      data:
        ca.crt: "{{ webhook_tls.ca_cert | b64encode }}"
        tls.crt: "{{ webhook_tls.cert | b64encode }}"
        tls.key: "{{ webhook_tls.key | b64encode }}"
  no_log: true
  when: webhook_tls is changed
"""

RETURN = r"""
ca_cert:
  description: CA certificate (PEM); goes into the webhook configuration's caBundle.
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\n..."
cert:
  description: Serving certificate (PEM).
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\n..."
key:
  description:
    - Serving private key (PEM, PKCS#8, unencrypted) when new certificates were made; empty when the given ones are
      kept, because the key you passed in is never echoed back (Ansible masks no_log values in results).
    - Store the certificate only when the task reports C(changed).
  returned: always
  type: str
  sample: "-----BEGIN PRIVATE KEY-----\n..."
not_after:
  description: Expiry of the serving certificate (UTC, ISO 8601).
  returned: always
  type: str
  sample: "2035-01-01T00:00:00+00:00"
reason:
  description: Why new certificates were made; empty when the given ones were kept.
  returned: always
  type: str
  sample: "no certificate given"
"""

import datetime
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _not_after(cert):
    """Expiry as an aware datetime, across cryptography versions."""
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def reuse_problem(ca_pem, cert_pem, key_pem, dns_names, renew_before_days):
    """Why the given PEMs cannot be kept, or '' when they can."""
    if not (ca_pem and cert_pem and key_pem):
        return "no certificate given"
    try:
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        return "unreadable PEM: {0}".format(exc)
    if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        return "the key does not belong to the certificate"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "the certificate was not issued by the CA"
    try:
        covered = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        covered = set()
    missing = [name for name in dns_names if name not in covered]
    if missing:
        return "the certificate does not cover {0}".format(", ".join(missing))
    if _not_after(cert) - _now() < datetime.timedelta(days=renew_before_days):
        return "the certificate expires within {0} days".format(renew_before_days)
    return ""


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(dns_names, valid_days):
    """A fresh CA and a serving certificate for ``dns_names``, as PEM strings."""
    start = _now() - datetime.timedelta(minutes=5)
    end = start + datetime.timedelta(days=valid_days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("k8s-ai-conformance webhook CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_names[0])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        ca.public_bytes(pem).decode(),
        cert.public_bytes(pem).decode(),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    )


def argspec():
    return dict(
        dns_names=dict(type="list", elements="str", required=True),
        ca_cert=dict(type="str"),
        cert=dict(type="str"),
        key=dict(type="str", no_log=True),
        valid_days=dict(type="int", default=3650),
        renew_before_days=dict(type="int", default=30),
    )


def main():
    module = AnsibleModule(argument_spec=argspec(), supports_check_mode=True)
    if CRYPTOGRAPHY_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    dns_names = [n for n in params["dns_names"] if n]
    if not dns_names:
        module.fail_json(msg="dns_names needs at least one name, such as <service>.<namespace>.svc")
    if params["valid_days"] <= params["renew_before_days"]:
        module.fail_json(msg="valid_days ({0}) must be larger than renew_before_days ({1}), or every run would renew".format(
            params["valid_days"], params["renew_before_days"]))

    reason = reuse_problem(params["ca_cert"], params["cert"], params["key"], dns_names, params["renew_before_days"])
    if reason:
        ca_pem, cert_pem, key_pem = issue(dns_names, params["valid_days"])
    else:
        # The caller already has the key; returning it would only come back masked as a no_log value.
        ca_pem, cert_pem, key_pem = params["ca_cert"], params["cert"], ""
    not_after = _not_after(x509.load_pem_x509_certificate(cert_pem.encode())).isoformat()
    module.exit_json(changed=bool(reason), ca_cert=ca_pem, cert=cert_pem, key=key_pem, not_after=not_after, reason=reason)


if __name__ == "__main__":
    main()
