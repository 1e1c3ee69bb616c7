"""Name -> factory registries, one per kind of part.

A plugin registers a factory with the pydantic model of its options; the registry
validates options and builds parts. Lookups by an unknown name fail with the kind,
the name, the closest known names and every installed choice.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from ssgan_core.errors import ConfigError, SsganError

if TYPE_CHECKING:
    from ssgan_core.interfaces import AudioSpec


class NoOptions(BaseModel):
    """Options model for parts that take none."""

    model_config = ConfigDict(extra="forbid")


Factory = Callable[[Any, "AudioSpec"], Any]


@dataclass(frozen=True)
class Entry:
    """One registered part.

    ``factory`` is a callable or a ``"package.module:function"`` path, imported on the
    first build: a plugin whose parts need torch registers paths and torch-free options
    models, so listing parts and validating configs never import torch.
    """

    kind: str
    name: str
    factory: Factory | str
    options: type[BaseModel]
    description: str
    package: str
    version: str

    def resolve_factory(self) -> Factory:
        """The factory itself (importing its module if it was registered by path)."""
        if callable(self.factory):
            return self.factory
        module, _, attr = self.factory.partition(":")
        return cast(Factory, getattr(importlib.import_module(module), attr))


class UnknownPartError(SsganError, LookupError):
    """Raised for a name no plugin registered."""

    def __init__(
        self, kind: str, name: str, known: list[str], failed: list[str] | tuple[str, ...] = ()
    ) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        choices = ", ".join(sorted(known)) or "none installed"
        broken = "".join(f" {name!r} may come from {f}." for f in failed)
        super().__init__(
            f"Unknown {kind} {name!r}.{hint} Installed {plural(kind)}: {choices}.{broken} "
            "Run `ssgan list-plugins` to see every part and the package providing it."
        )
        self.kind, self.name, self.suggestions = kind, name, close


def plural(kind: str) -> str:
    """``loss`` -> ``losses``, ``transform`` -> ``transforms``."""
    return kind + ("es" if kind.endswith("s") else "s")


class Registry:
    """All parts of one kind, by name.

    ``failed_plugins`` (filled by the plugin host) describes plugins that failed to load,
    so an unknown name can say where it may have come from.
    """

    def __init__(self, kind: str) -> None:
        from ssgan_core.plugins import KINDS  # the part kinds, without importing torch

        if kind not in KINDS:
            raise ValueError(f"unknown part kind {kind!r}; expected one of {list(KINDS)}")
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self.failed_plugins: list[str] = []

    def add(self, entry: Entry) -> None:
        existing = self._entries.get(entry.name)
        if existing is not None and existing.package != entry.package:
            raise SsganError(
                f"{self.kind} {entry.name!r} is registered twice: by {existing.package} "
                f"and by {entry.package}. Uninstall one, or restrict plugins with "
                "SSGAN_PLUGINS."
            )
        self._entries[entry.name] = entry

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownPartError(self.kind, name, list(self._entries), self.failed_plugins) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style wildcard, e.g. ``"paper-*"``."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def validate(self, name: str, options: dict[str, Any]) -> BaseModel:
        """Options dict -> the plugin's options model (raises pydantic ValidationError)."""
        return self.get(name).options.model_validate(options)

    def create(self, name: str, options: BaseModel | dict[str, Any], audio: AudioSpec) -> Any:
        """Build a part, checking it is of the kind this registry holds.

        Bad options (the options model refuses them) and any exception a factory raises
        become a :class:`ConfigError` naming the kind, the part and its options, so a
        plugin's ``ValueError("bands must be even")`` reaches the user as one line.
        """
        entry = self.get(name)
        if isinstance(options, entry.options):
            opts = options
        else:
            try:
                opts = self.validate(name, dict(options))  # type: ignore[arg-type]
            except ValidationError as exc:
                from ssgan_core.config import format_validation_error

                raise ConfigError(format_validation_error(exc, prefix=self.kind)) from None
        try:
            part = entry.resolve_factory()(opts, audio)
        except SsganError:
            raise
        except Exception as exc:
            if os.environ.get("SSGAN_DEBUG"):
                raise
            given = ", ".join(f"{k}={v!r}" for k, v in opts.model_dump().items()) or "no options"
            raise ConfigError(
                f"{self.kind} {name!r} (from {entry.package}) could not be built with {given}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if self.kind == "loss" and hasattr(opts, "weight"):
            part.weight = float(opts.weight)  # the config owns a term's weight
        from ssgan_core.interfaces import PART_KINDS

        base = PART_KINDS[self.kind]
        if not isinstance(part, base):
            raise SsganError(
                f"{self.kind} {name!r} from {entry.package} returned {type(part).__name__}, "
                f"which is not a {base.__module__}.{base.__name__}."
            )
        return part
