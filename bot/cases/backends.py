"""Case backends: where a filed case is registered.

In the spirit of Open Formulieren's registration plugins. ``embedded`` keeps the
case in the store of the assistant itself. Any other backend name ``<name>``
is a plugin: the class ``Plugin`` in the module ``integrations.<name>.plugin``,
a subclass of ``CaseBackend``. The delivery worker calls
``register_submission`` for every outbox entry of that backend.
"""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import Optional

from bot.cases.models import Case


@dataclass(frozen=True)
class RemoteReference:
    """Where the remote system keeps the case (url may be None)."""

    url: Optional[str]
    identificatie: str


class CaseBackend(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    def register_submission(self, case: Case) -> RemoteReference:
        """Register the case remotely. Raise on failure (the worker retries or parks)."""

    def fetch_status(self, case: Case) -> Optional[str]:
        """Optional: the remote status of the case, None when unknown."""
        return None


class EmbeddedBackend(CaseBackend):
    """The case store itself is the zaaksysteem: nothing to deliver."""

    name = "embedded"

    def register_submission(self, case: Case) -> RemoteReference:
        return RemoteReference(url=None, identificatie=case.zaaknummer)


def get_backend(name: str) -> CaseBackend:
    """``"embedded"`` -> built in; ``"zgw"`` -> ``integrations.zgw.plugin.Plugin()``."""
    if name == EmbeddedBackend.name:
        return EmbeddedBackend()
    if not name or not name.isidentifier():
        raise ValueError(f"invalid case backend name {name!r}")
    module_name = f"integrations.{name}.plugin"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ValueError(f"unknown case backend {name!r} (no module {module_name})") from exc
        raise  # the plugin exists but one of its own imports is missing
    plugin_class = getattr(module, "Plugin", None)
    if not (isinstance(plugin_class, type) and issubclass(plugin_class, CaseBackend)):
        raise TypeError(f"{module_name}.Plugin must be a subclass of CaseBackend")
    return plugin_class()
