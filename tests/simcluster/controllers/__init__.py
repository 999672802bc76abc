"""Simulated controllers: controller-manager, scheduler, kubelet (see manager.py and each module)."""
from __future__ import annotations

from .manager import ControllerManager

__all__ = ["ControllerManager"]
