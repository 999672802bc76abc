"""Simulated controllers (controller-manager, scheduler, kubelet). Placeholder until they land."""
from __future__ import annotations


class ControllerManager(object):
    def __init__(self, sim):
        self.sim = sim

    def start(self):
        pass

    def stop(self):
        pass
