"""Certificates and kubeconfig for the simulated cluster.

A real cluster's clients verify the server certificate against the kubeconfig's
certificate-authority-data, so the simulator does the same: a throw-away CA signs a serving
certificate whose SANs cover 127.0.0.1 (the address clients dial), `localhost` and the in-cluster
service names. Nothing here is secret; keys live in memory and in a temporary directory only.
"""
from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import ssl
import tempfile

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class ServingCerts(object):
    """A CA and a serving certificate signed by it (ECDSA P-256: fast to generate, accepted by Go)."""

    def __init__(self, host="127.0.0.1"):
        now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        later = now + datetime.timedelta(days=365)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(_name("simcluster-ca")).issuer_name(_name("simcluster-ca"))
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(later)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False,
                                           encipher_only=False, decipher_only=False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName("localhost")] + [x509.DNSName(n) for n in SERVICE_NAMES]
        sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        if host != "127.0.0.1":
            sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (x509.CertificateBuilder().subject_name(_name("kube-apiserver")).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(later)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_pem = _pem_cert(ca)
        self.cert_pem = _pem_cert(cert)
        self.key_pem = _pem_key(key)

    def server_context(self):
        """An SSLContext for the server side; HTTP/1.1 only (no h2 ALPN, so Go clients stay on 1.1)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        with tempfile.TemporaryDirectory(prefix="simcluster-tls-") as tmp:
            cert_file = os.path.join(tmp, "tls.crt")
            key_file = os.path.join(tmp, "tls.key")
            with open(cert_file, "wb") as fh:
                fh.write(self.cert_pem)
            with open(key_file, "wb") as fh:
                fh.write(self.key_pem)
            ctx.load_cert_chain(cert_file, key_file)
        return ctx


def kubeconfig(url, ca_pem, users, context="simcluster", current_user=None):
    """A kubeconfig dict: one cluster, one user entry and one context per scenario user.

    The current context (named `context`) uses `current_user` (default: the first user); the other
    users get contexts named `<context>-<user>` so tests can switch with `--context`.
    """
    users = list(users)
    if not users:
        raise ValueError("a scenario needs at least one user for the kubeconfig")
    current_user = current_user or users[0]["name"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": {
            "server": url, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": u["name"], "user": {"token": u["token"]}} for u in users],
        "contexts": [],
        "current-context": context,
    }
    for user in users:
        name = context if user["name"] == current_user else "%s-%s" % (context, user["name"])
        config["contexts"].append({"name": name, "context": {"cluster": context, "user": user["name"],
                                                             "namespace": "default"}})
    return config


def write_kubeconfig(path, config):
    """Write a kubeconfig readable only by its owner (kubectl warns about wider permissions)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(config, fh, default_flow_style=False, sort_keys=False)
    return path
