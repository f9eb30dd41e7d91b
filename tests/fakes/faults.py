"""Fault injection shared by the fakes: HTTP errors, slow answers after storing."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import List, Optional


@dataclass
class Fault:
    method: Optional[str]          # None: any method
    path: Optional[str]            # regex on the path below the API root, e.g. r"^zaken$"
    times: int
    status: Optional[int] = None   # answer with this status instead of handling
    delay: float = 0.0             # handle (store!), then wait this long before answering
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None
        )


class FaultsMixin:
    """Needs ``self.lock`` (an RLock) and ``self.faults`` (a list)."""

    lock: threading.RLock
    faults: List[Fault]

    def fail(self, status: int, times: int = 1, method: Optional[str] = None, path: Optional[str] = None) -> Fault:
        """The next ``times`` matching requests get ``status`` (nothing is stored)."""
        fault = Fault(method=method, path=path, times=times, status=status)
        with self.lock:
            self.faults.append(fault)
        return fault

    def delay_after_store(self, seconds: float, times: int = 1, method: Optional[str] = "POST",
                          path: Optional[str] = None) -> Fault:
        """Handle (and store) the next matching requests, then wait before answering:
        a client with a shorter timeout gives up although the remote has the data."""
        fault = Fault(method=method, path=path, times=times, delay=seconds)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Optional[Fault]:
        with self.lock:
            for fault in self.faults:
                if fault.hits < fault.times and fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None
