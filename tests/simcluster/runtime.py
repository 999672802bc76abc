"""The simulated container runtime. Placeholder until it lands (see README.md for the contract)."""
from __future__ import annotations


class Runtime(object):
    def __init__(self, sim):
        self.sim = sim

    def logs(self, namespace, pod_name, container, previous=False, tail_lines=None):
        return ""

    def http(self, pod, port, method, path, query, headers, body):
        return 503, {"Content-Type": "text/plain"}, b"no simulated app listens on this port\n"
