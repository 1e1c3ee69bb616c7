"""What a checkpoint holds, registered once by each component that owns a part of it.

The trainer never lists checkpoint keys by hand: networks, optimisers, schedulers, RNG
streams, run progress and callbacks register themselves with a :class:`StateRegistry`,
and saving or resuming walks the registry. The payload keeps the layout of format
version 1 (``checkpoint.py``), so checkpoints written before the registry still load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from ssgan_core.interfaces import Generator
from ssgan_core.training.distributed import World
from ssgan_core.training.step import WeightAverage


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], /) -> Any: ...


class StateRegistry:
    """Named parts of the checkpoint payload.

    ``register(name, part)`` stores ``part.state_dict()`` under ``name``;
    ``register_fields(part)`` merges the part's keys into the top level (for parts the
    format keeps there, such as ``epoch`` and ``step``). ``optional`` parts may be missing
    from a checkpoint written before they existed; they then keep their fresh state.
    Parts save and load in the order they were registered.
    """

    def __init__(self) -> None:
        self._parts: list[tuple[str | None, Stateful, bool]] = []

    def register(self, name: str, part: Stateful, *, optional: bool = False) -> None:
        if any(name == known for known, _, _ in self._parts):
            raise ValueError(f"checkpoint entry {name!r} registered twice")
        self._parts.append((name, part, optional))

    def register_fields(self, part: Stateful) -> None:
        self._parts.append((None, part, False))

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, part, _ in self._parts:
            fields = part.state_dict() if name is None else {name: part.state_dict()}
            clash = fields.keys() & out.keys()
            if clash:
                raise ValueError(f"checkpoint entries {sorted(clash)} registered twice")
            out.update(fields)
        return out

    def load_state_dict(self, payload: Mapping[str, Any]) -> None:
        for name, part, optional in self._parts:
            if name is None:
                part.load_state_dict(dict(payload))
            elif name in payload or not optional:
                part.load_state_dict(payload[name])


class StateGroup:
    """Several parts under one entry: ``{"generator": ..., "critic": ...}``."""

    def __init__(self, parts: Mapping[str, Stateful]) -> None:
        self.parts = dict(parts)

    def state_dict(self) -> dict[str, Any]:
        return {name: part.state_dict() for name, part in self.parts.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self.parts.items():
            part.load_state_dict(state[name])


class Attribute:
    """One attribute of an object as a top-level entry (``data_key``), ``default`` when absent."""

    def __init__(self, owner: Any, name: str, default: Any = None) -> None:
        self.owner, self.name, self.default = owner, name, default

    def state_dict(self) -> dict[str, Any]:
        return {self.name: getattr(self.owner, self.name)}

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        setattr(self.owner, self.name, payload.get(self.name, self.default))


class GeneratorWeights:
    """``generator``: what generation samples with (the weight average when kept);
    ``generator_train``: the trained weights, only when they differ from that."""

    def __init__(self, generator: Generator, average: WeightAverage | None) -> None:
        self.generator, self.average = generator, average

    def state_dict(self) -> dict[str, Any]:
        if self.average is None:
            return {"generator": self.generator.state_dict()}
        return {
            "generator": self.average.network.state_dict(),
            "generator_train": self.generator.state_dict(),
        }

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        self.generator.load_state_dict(payload.get("generator_train", payload["generator"]))
        if self.average is not None:
            self.average.network.load_state_dict(payload["generator"])


@dataclass
class RunProgress:
    """Where the run is: finished periods and steps, and the position inside the pass over the data.

    ``epoch`` keeps its historical name for the number of finished periods.
    """

    device: torch.device
    epoch: int = 0
    step: int = 0
    generator_steps: int = 0
    batch: int = 0
    """Next batch of the current pass over the data."""
    order: Tensor | None = None
    """The current pass's sample order."""
    sums: dict[str, Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    global_batch: int | None = None
    """Samples per step over all ranks when saved (``None``: a checkpoint from before it was kept)."""

    def add(self, values: dict[str, Tensor]) -> None:
        """Running sums of one step's loss values, kept on the device (no sync per step)."""
        for key, value in values.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
            self.counts[key] = self.counts.get(key, 0) + 1

    def start_period(self) -> None:
        self.sums, self.counts, self.seconds = {}, {}, 0.0

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "generator_steps": self.generator_steps,
            "position": {
                "batch": self.batch,
                "order": self.order,
                "sums": {k: v.detach().cpu() for k, v in self.sums.items()},
                "counts": dict(self.counts),
                "seconds": self.seconds,
                "global_batch": self.global_batch,
            },
        }

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        position = payload["position"]
        self.epoch, self.step = int(payload["epoch"]), int(payload["step"])
        self.generator_steps = int(payload.get("generator_steps", 0))
        self.batch, self.order = int(position["batch"]), position["order"]
        self.sums = {k: v.to(self.device) for k, v in position["sums"].items()}
        self.counts = {k: int(v) for k, v in position["counts"].items()}
        self.seconds = float(position["seconds"])
        self.global_batch = position.get("global_batch")

    def rebatch(
        self, old: int, new: int, old_epoch_batches: int, new_epoch_batches: int, epochs: bool
    ) -> None:
        """Re-count the position in steps of ``new`` samples (the world size changed on resume).

        The place in the pass over the data is kept in samples; a finished pass stays
        finished. Under the epoch schedule the step count follows, since periods are passes.
        """
        finished = self.order is None or self.batch >= old_epoch_batches
        self.batch = new_epoch_batches if finished else min(self.batch * old // new, new_epoch_batches)
        if epochs:
            self.step = self.epoch * new_epoch_batches + (0 if finished else self.batch)


def rank_seed(seed: int, rank: int) -> int:
    """Rank ``rank``'s seed for its own random stream; rank 0 keeps the run seed, so a
    one-process run draws exactly what it drew before distributed training existed."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] % 2**63)


class RngStates:
    """The global torch stream (per rank), the device's, and the data-order stream.

    Every rank's torch stream is saved (``ranks``) so the same world size resumes
    exactly; another world size gives each rank a fresh stream from the run seed, its
    rank and the step (``reseed``). ``torch`` is rank 0's, what a one-process run loads.
    """

    def __init__(self, device: torch.device, data: torch.Generator, world: World, reseed: Callable[[], int]):
        self.device, self.data, self.world, self.reseed = device, data, world, reseed

    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "data": self.data.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":
            rng["mps"] = torch.mps.get_rng_state()
        if self.world.size > 1:
            rng["ranks"] = self.world.all_gather_object(
                {k: v for k, v in rng.items() if k in ("torch", "cuda", "mps")}
            )
        return rng

    def load_state_dict(self, rng: dict[str, Any]) -> None:
        self.data.set_state(rng["data"])
        ranks = rng.get("ranks") or []
        own = rng if self.world.size == 1 else None
        if len(ranks) == self.world.size > 1:
            own = ranks[self.world.rank]
        if own is None:  # saved by another number of ranks: a new stream for this rank
            torch.manual_seed(self.reseed())
            return
        torch.set_rng_state(own["torch"])
        if self.device.type == "cuda" and "cuda" in own:
            torch.cuda.set_rng_state(own["cuda"], self.device)
        elif self.device.type == "mps" and "mps" in own:
            torch.mps.set_rng_state(own["mps"])
