"""Finds plugins through the ``ssgan`` entry-point group and fills the registries.

Every plugin, the built-in ones included, is an entry point. Each is imported and
asked to register on its own; one that fails is recorded (name, package, version,
error) and skipped so the rest keep working.

Environment:
    ``SSGAN_STRICT_PLUGINS=1``  a failing plugin raises instead of being skipped.
    ``SSGAN_PLUGINS=a,b``       load only these external plugins (entry-point or
                                package names); empty string loads none. Plugins
                                shipped with ssgan itself always load.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy
from pydantic import BaseModel

from ssgan_core import hookspecs
from ssgan_core.errors import SsganError
from ssgan_core.registry import Entry, NoOptions, Registry

GROUP = "ssgan"
OWN_DISTRIBUTION = "ssgan"
STRICT_ENV = "SSGAN_STRICT_PLUGINS"
ALLOW_ENV = "SSGAN_PLUGINS"

HOOK_KIND = {
    "register_transforms": "transform",
    "register_generators": "generator",
    "register_critics": "critic",
    "register_losses": "loss",
    "register_inverters": "inverter",
    "register_datasets": "dataset",
}

_FACTORY_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
"""A factory registered by path: ``package.module:function``."""

KINDS = tuple(HOOK_KIND.values())
"""The part kinds (the keys of ``ssgan_core.interfaces.PART_KINDS``, in its order),
readable without importing torch: the CLI lists them in its help."""


class PluginLoadError(SsganError):
    """A plugin failed to import or register while strict loading was on."""

    exit_code = 1


@dataclass(frozen=True)
class PluginInfo:
    name: str
    package: str
    version: str


@dataclass(frozen=True)
class PluginFailure:
    plugin: PluginInfo
    stage: str
    error: str
    traceback: str

    @property
    def summary(self) -> str:
        """``ssgan-mel-plugin 0.1 (plugin 'mel'), which failed at import: ModuleNotFoundError: ...``"""
        p = self.plugin
        return f"{p.package} {p.version} (plugin {p.name!r}), which failed at {self.stage}: {self.error}"


@dataclass(frozen=True)
class Preset:
    name: str
    config: dict[str, Any]
    description: str
    package: str
    version: str = ""


@dataclass
class PluginHost:
    """Registries, presets and load report for one set of plugins."""

    strict: bool = False
    registries: dict[str, Registry] = field(default_factory=lambda: {kind: Registry(kind) for kind in KINDS})
    presets: dict[str, Preset] = field(default_factory=dict)
    loaded: list[PluginInfo] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    manager: pluggy.PluginManager = field(default_factory=lambda: _new_manager())

    @classmethod
    def with_builtins(cls, *plugins: object, strict: bool = True) -> PluginHost:
        """A host with ssgan's own parts and presets, plus ``plugins`` (objects or modules).

        For a plugin's tests: ``host = PluginHost.with_builtins(my_plugin)`` gives the
        built-in transforms, losses, ... beside yours, without installed entry points.
        Strict by default, so a broken plugin fails the test with its error.
        """
        host = cls(strict=strict)
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            if dist is None or _normalise(dist.metadata["Name"]) != OWN_DISTRIBUTION:
                continue
            host._load_entry_point(ep, PluginInfo(ep.name, dist.metadata["Name"], dist.version))
        for plugin in plugins:
            name = getattr(plugin, "__name__", type(plugin).__name__)
            host.add_plugin(plugin, PluginInfo(name, name, "test"))
        return host

    def registry(self, kind: str) -> Registry:
        try:
            return self.registries[kind]
        except KeyError:
            raise SsganError(f"unknown part kind {kind!r}; expected one of {list(KINDS)}") from None

    def add_plugin(self, plugin: object, info: PluginInfo) -> bool:
        """Register a plugin object or module and run its hooks; False if it failed."""
        try:
            self.manager.register(plugin, name=info.name)
        except Exception as exc:  # a bad hook signature or duplicate name
            return self._fail(info, "register", exc)
        for hook_name in _hook_names():
            for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                try:
                    impl.function(register=self._register_callback(hook_name, info))
                except Exception as exc:
                    self.manager.unregister(plugin)
                    return self._fail(info, hook_name, exc)
        self.loaded.append(info)
        return True

    def _register_callback(self, hook_name: str, info: PluginInfo) -> Callable[..., None]:
        if hook_name == "register_presets":

            def register_preset(name: str, config: dict[str, Any], description: str = "") -> None:
                if not isinstance(config, dict):
                    raise TypeError(f"preset {name!r} config must be a dict, got {type(config).__name__}")
                self.presets[name] = Preset(name, config, description, info.package, info.version)

            return register_preset
        kind = HOOK_KIND[hook_name]

        def register(
            name: str,
            factory: Callable[[Any, Any], Any] | str,
            *,
            options: type[BaseModel] = NoOptions,
            description: str = "",
        ) -> None:
            if not (isinstance(options, type) and issubclass(options, BaseModel)):
                raise TypeError(f"{kind} {name!r}: options must be a pydantic BaseModel subclass")
            if isinstance(factory, str):
                if not _FACTORY_PATH.fullmatch(factory):
                    raise TypeError(f"{kind} {name!r}: factory path must look like 'package.module:function'")
                docstring = ""  # not imported yet
            elif callable(factory):
                docstring = _first_line(factory.__doc__)
            else:
                raise TypeError(f"{kind} {name!r}: factory must be callable or a 'module:function' path")
            self.registries[kind].add(
                Entry(
                    kind=kind,
                    name=name,
                    factory=factory,
                    options=options,
                    description=description or docstring,
                    package=info.package,
                    version=info.version,
                )
            )

        return register

    def _fail(self, info: PluginInfo, stage: str, exc: BaseException) -> bool:
        failure = PluginFailure(
            info, stage, f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))
        )
        if self.strict:
            raise PluginLoadError(
                f"plugin {info.name!r} ({info.package} {info.version}) failed at {stage}: {failure.error}"
            ) from exc
        self.failures.append(failure)
        for registry in self.registries.values():
            registry.failed_plugins.append(failure.summary)
        if os.environ.get("SSGAN_DEBUG"):
            sys.stderr.write(
                f"ssgan: plugin {info.name!r} ({info.package}) failed at {stage}:\n{failure.traceback}"
            )
        return False

    def failure_notes(self) -> list[str]:
        """One phrase per failed plugin, for unknown-name errors."""
        return [f.summary for f in self.failures]

    def load_entry_points(self) -> None:
        allowed = _allowed_external()
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            package = dist.metadata["Name"] if dist is not None else "unknown"
            version = dist.version if dist is not None else "unknown"
            info = PluginInfo(ep.name, package, version)
            own = _normalise(package) == OWN_DISTRIBUTION
            if not own and allowed is not None and not ({ep.name, _normalise(package)} & allowed):
                continue
            if any(p.name == ep.name for p in self.loaded):
                continue
            self._load_entry_point(ep, info)

    def _load_entry_point(self, ep: Any, info: PluginInfo) -> None:
        """Import one entry point's plugin and register it; an import error is a plugin failure."""
        try:
            plugin = ep.load()
        except Exception as exc:
            self._fail(info, "import", exc)
            return
        self.add_plugin(plugin, info)


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _hook_names() -> Iterable[str]:
    return [*HOOK_KIND, "register_presets"]


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def _entry_points() -> list[Any]:
    # Sorted so load order (and so duplicate-name errors) are deterministic.
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def _allowed_external() -> set[str] | None:
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    return {_normalise(p.strip()) for p in raw.split(",") if p.strip()} | {
        p.strip() for p in raw.split(",") if p.strip()
    }


def _strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


_host: PluginHost | None = None


def get_host(*, strict: bool | None = None) -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _host
    if _host is None:
        host = PluginHost(strict=_strict_from_env() if strict is None else strict)
        host.load_entry_points()
        _host = host
    return _host


def reset_host() -> None:
    """Forget loaded plugins; the next ``get_host()`` loads them again (for tests)."""
    global _host
    _host = None


def registry(kind: str) -> Registry:
    """Shortcut for ``get_host().registry(kind)``."""
    return get_host().registry(kind)
