"""Two CPU ranks (gloo, torch.multiprocessing) train the tiny model: identical weights after
every step, files from rank 0 only, a checkpoint that resumes in one process, and the same
update as one process with the ranks' batches together (dropout off, synchronised BatchNorm)."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ssgan_core.checkpoint import load_checkpoint, state_dict_digest
from ssgan_core.interfaces import AudioSpec, Critic, LossContext, LossTerm
from ssgan_core.training import GanStepper, Trainer
from ssgan_core.training.distributed import World, replicas_for
from tests.tiny_parts import SIZE, GenOptions, TinyGenerator, Wasserstein, tiny_config, tiny_host

WORLD = 2
B = 3
STEPS = 3
WRITES = ("open", "os.rename", "os.remove", "os.mkdir", "shutil.rmtree")


class BatchNormCritic(Critic):
    """A critic with BatchNorm on the gradient penalty's double-backward path, and no dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2, 4, 4, 2, 1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4 * (SIZE // 2) ** 2, 1)

    def forward_features(self, image):
        h = self.conv(image)
        return self.head(h.flatten(1)).squeeze(1), {"conv": h}


class MidpointPenalty(LossTerm):
    """The gradient penalty at the real/fake midpoint: no random draw, so runs can be compared."""

    def critic_loss(self, ctx: LossContext):
        mix = (0.5 * ctx.real + 0.5 * ctx.fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(ctx.critic(mix).sum(), mix, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _equivalence_parts(world: World):
    """Generator and critic (same initial weights everywhere), their stepper, and the global batches."""
    torch.manual_seed(0)
    generator = TinyGenerator(GenOptions(), AudioSpec(8000, 0.128))
    for module in generator.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    critic = BatchNormCritic()
    stepper = GanStepper(
        generator,
        critic,
        {"w": Wasserstein(), "gp": MidpointPenalty()},
        {"w": 1.0, "gp": 5.0},
        torch.optim.SGD(generator.parameters(), lr=0.01),  # linear in the gradient: no noise amplified
        torch.optim.SGD(critic.parameters(), lr=0.01),
        n_critic=2,
        replicas=replicas_for(generator, critic, world, torch.device("cpu")),
    )
    data = torch.Generator().manual_seed(1)
    reals = torch.rand(STEPS, WORLD * B, 2, SIZE, SIZE, generator=data) * 2 - 1
    latents = torch.randn(STEPS, WORLD * B, 8, generator=data)
    return generator, critic, stepper, reals, latents


def _digest(*networks: nn.Module) -> str:
    return "".join(state_dict_digest(n.state_dict()) for n in networks)


def _worker(rank: int, port: int, tmp: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    writes: list[str] = []
    if rank > 0:

        def audit(event: str, args: tuple) -> None:
            if event not in WRITES or not str(args[0]).startswith(tmp):
                return
            if event == "open" and not (
                str(args[1] or "").strip("rb") or (args[2] or 0) & (os.O_WRONLY | os.O_RDWR)
            ):
                return
            writes.append(f"{event} {args[0]}")

        sys.addaudithook(audit)
    host = tiny_host()
    cfg = tiny_config(Path(tmp), host, "training.n_critic=2", "training.checkpoint_every_steps=1")
    digests: list[str] = []

    class Recording(Trainer):
        def after_step(self) -> None:
            digests.append(_digest(self.generator, self.critic))

    trainer = Recording.start(cfg, Path(tmp) / "runs" / "run", host=host)
    result = trainer.fit()

    generator, critic, stepper, reals, latents = _equivalence_parts(trainer.world)
    for step in range(STEPS):
        mine = slice(rank * B, (rank + 1) * B)
        stepper.step(reals[step, mine], step, z=latents[step, mine])
    equivalent = {k: v.tolist() for k, v in {**generator.state_dict(), **critic.state_dict()}.items()}
    out = {"digests": digests, "writes": writes, "steps": result.step, "equivalent": equivalent}
    (Path(tmp) / f"rank{rank}.json").write_text(json.dumps(out))
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    torch.multiprocessing.spawn(_worker, args=(_free_port(), str(tmp)), nprocs=WORLD, join=True)
    return tmp, [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(WORLD)]


def test_ranks_hold_identical_weights_after_every_step(two_ranks):
    _, (first, second) = two_ranks
    assert first["steps"] == second["steps"] == len(first["digests"]) > 2
    assert first["digests"] == second["digests"]
    assert len(set(first["digests"])) == len(first["digests"])  # and every step changed them


def test_only_rank_0_writes(two_ranks):
    tmp, (_, second) = two_ranks
    assert second["writes"] == []
    run = tmp / "runs" / "run"
    assert (run / "checkpoints" / "last.ckpt").exists() and (run / "previews" / "epoch_002.png").exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["ranks"] for line in lines] == [WORLD, WORLD]


def test_checkpoint_of_two_ranks_resumes_in_one_process(two_ranks):
    tmp, (first, _) = two_ranks
    run = tmp / "runs" / "run"
    payload = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert len(payload["rng"]["ranks"]) == WORLD
    assert not any("module." in key for key in payload["critic"])  # unwrapped weights
    host = tiny_host()
    resumed = Trainer.resume(run, host=host, device="cpu")
    assert resumed.world.size == 1 and resumed.step == first["steps"]
    assert _digest(resumed.generator, resumed.critic) == first["digests"][-1]
    resumed.cfg.training.epochs = 3
    assert resumed.fit().status == "finished" and resumed.epoch == 3
    assert resumed.step == 3 * resumed.batches_per_epoch > 3 * first["steps"] // 2  # batches of 4, not 8


def test_two_ranks_equal_one_process_with_both_batches(two_ranks):
    _, (first, second) = two_ranks
    generator, critic, stepper, reals, latents = _equivalence_parts(World())
    for step in range(STEPS):
        stepper.step(reals[step], step, z=latents[step])
    alone = {**generator.state_dict(), **critic.state_dict()}
    for key, value in alone.items():
        for rank in (first, second):
            torch.testing.assert_close(
                torch.tensor(rank["equivalent"][key], dtype=value.dtype),
                value,
                msg=lambda m, k=key: f"{k}: {m}",
            )


def test_cli_launcher_reports_a_failed_rank_in_one_line(tmp_path):
    """`ssgan train --nproc-per-node 2` runs torchrun; rank 0 refuses a used run folder, rank 1 is
    stopped quietly, and the launcher adds one line and rank 0's exit code."""
    from typer.testing import CliRunner

    from ssgan_cli.main import app

    used = tmp_path / "used"
    (used / "checkpoints").mkdir(parents=True)
    (used / "checkpoints" / "last.ckpt").write_bytes(b"x")
    args = ["train", "--nproc-per-node", "2", "--preset", "paper-kicks", "--run-dir", str(used)]
    result = CliRunner().invoke(app, [*args, "--set", "data.source.count=8"])
    assert result.exit_code == 2, result.output
    assert "rank 0 of 2 ended with exit code 2" in result.output


def test_launcher_names_the_failed_rank_not_the_first_stopped_one():
    """A rank stopped by rank 0 may exit first; the launcher still names rank 0 and its code."""
    from types import SimpleNamespace

    from cli.train import _cause

    stopped = SimpleNamespace(exitcode=3, timestamp=10)
    failed = SimpleNamespace(exitcode=2, timestamp=11)
    assert _cause({1: stopped, 0: failed}) == (0, failed)
    crashed = SimpleNamespace(exitcode=1, timestamp=12)
    assert _cause({0: failed, 1: crashed}) == (0, failed)  # two causes: the earlier one
    assert _cause({1: stopped}) == (1, stopped)  # none failed of itself: still one name
    terminated = SimpleNamespace(exitcode=-15, timestamp=9)  # torchrun's SIGTERM after a failure
    assert _cause({1: terminated, 0: failed}) == (0, failed)
