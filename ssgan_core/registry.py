"""Name -> factory registries, one per kind of part.

A plugin registers a factory with the pydantic model of its options; the registry
validates options and builds parts. Lookups by an unknown name fail with the kind,
the name, the closest known names and every installed choice.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ssgan_core.errors import SsganError

if TYPE_CHECKING:
    from ssgan_core.interfaces import AudioSpec


class NoOptions(BaseModel):
    """Options model for parts that take none."""

    model_config = ConfigDict(extra="forbid")


Factory = Callable[[Any, "AudioSpec"], Any]


@dataclass(frozen=True)
class Entry:
    """One registered part."""

    kind: str
    name: str
    factory: Factory
    options: type[BaseModel]
    description: str
    package: str
    version: str


class UnknownPartError(SsganError, LookupError):
    """Raised for a name no plugin registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        choices = ", ".join(sorted(known)) or "none installed"
        super().__init__(
            f"Unknown {kind} {name!r}.{hint} Installed {kind}s: {choices}. "
            "Run `ssgan list-plugins` to see every part and the package providing it."
        )
        self.kind, self.name, self.suggestions = kind, name, close


class Registry:
    """All parts of one kind, by name."""

    def __init__(self, kind: str) -> None:
        from ssgan_core.interfaces import PART_KINDS  # torch: loaded with the plugins, not at start-up

        if kind not in PART_KINDS:
            raise ValueError(f"unknown part kind {kind!r}; expected one of {list(PART_KINDS)}")
        self.kind = kind
        self._entries: dict[str, Entry] = {}

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
            raise UnknownPartError(self.kind, name, list(self._entries)) from None

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
        """Build a part, checking it is of the kind this registry holds."""
        entry = self.get(name)
        opts = options if isinstance(options, entry.options) else self.validate(name, dict(options))  # type: ignore[arg-type]
        part = entry.factory(opts, audio)
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
