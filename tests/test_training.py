"""The trainer with tiny parts: steps, run directory, exact resume, NaN stop, Ctrl-C, generation."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from ssgan_core.checkpoint import load_checkpoint, new_payload, save_checkpoint
from ssgan_core.config import dump_config, validate_config
from ssgan_core.errors import CheckpointError, InputError
from ssgan_core.generation import generate, load_generation_model
from ssgan_core.training import EarlyStopping, Reporter, Trainer, TrainingDiverged
from tests.tiny_parts import tiny_config, tiny_host


@pytest.fixture
def host():
    return tiny_host()


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        **{f"G.{k}": v.detach().clone() for k, v in trainer.generator.state_dict().items()},
        **{f"D.{k}": v.detach().clone() for k, v in trainer.critic.state_dict().items()},
    }


@pytest.mark.parametrize("critic_batches", ["separate", "joint"])
def test_one_step_updates_both_networks_and_stays_finite(tmp_path, host, critic_batches):
    cfg = tiny_config(tmp_path, host, f"training.critic_batches={critic_batches}")
    trainer = Trainer(cfg, tmp_path / "run", host=host)
    assert trainer.stepper.joint == (critic_batches == "joint")
    trainer.prepare()
    before = _state(trainer)
    n_critic = trainer.cfg.training.n_critic
    real = trainer.images_at(trainer.train_idx[:4])
    values = trainer.stepper.step(real, batch=n_critic)  # a generator turn too
    after = _state(trainer)
    assert {"critic_loss", "generator_loss", "critic/tiny-gp", "generator/tiny-fm"} <= set(values)
    assert all(torch.isfinite(v).all() for v in values.values())
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    for prefix in ("G.", "D."):
        changed = [k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        assert changed, f"no {prefix} weight changed"
    # A critic-only step leaves the generator's weights alone.
    trainer.stepper.step(real, batch=1)
    assert all(torch.equal(after[k], v) for k, v in _state(trainer).items() if k.startswith("G.net.1.weight"))


def test_fit_writes_the_run_directory(tmp_path, host):
    cfg = tiny_config(tmp_path, host, "training.early_stopping.warmup=0")
    result = Trainer.start(cfg, tmp_path / "run", host=host).fit()
    run = tmp_path / "run"
    assert result.status == "finished" and result.epochs == 2 and result.step == 8
    saved = json.loads((run / "config.json").read_text())
    built = saved.pop("built_with")
    assert saved == dump_config(cfg) and validate_config(saved, host) == cfg
    assert built["image_shape"] == [2, 32, 32]  # the tiny transform's, measured by encoding silence
    assert built["parts"]["generator"] == {"name": "tiny-gen", "package": "tests", "version": "test"}
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["built_with"] == built
    assert (run / "checkpoints" / "config.json").exists()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    keys = ("critic_loss", "critic/tiny-wasserstein", "critic/tiny-gp", "val_w", "lr_critic", "samples_per_s")
    for key in keys:
        assert key in lines[-1] and lines[-1][key] is not None
    assert "generator/tiny-fm" in lines[-1]
    assert lines[1]["lr_critic"] == pytest.approx(lines[0]["lr_critic"] * cfg.training.lr_gamma)
    assert result.best_epoch in (1, 2) and (run / "checkpoints" / "best.ckpt").exists()
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 2 and last["critic"] is not None and last["config"] == dump_config(cfg)
    previews = sorted(p.name for p in (run / "previews").iterdir())
    assert previews == [
        "epoch_001.png",
        "epoch_001_000.wav",
        "epoch_001_001.wav",
        "epoch_002.png",
        "epoch_002_000.wav",
        "epoch_002_001.wav",
    ]
    with pytest.raises(InputError, match="already exists"):
        Trainer.start(cfg, run, host=host)


@pytest.fixture
def one_thread():
    """Multi-threaded CPU reductions may sum in a different order from run to run; pin one thread
    so 'identical' can mean bitwise identical."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("saved_at", [4, 6], ids=["epoch-boundary", "mid-epoch"])
def test_resume_takes_the_same_next_step(tmp_path, host, saved_at, one_thread):
    """Train to one step past a checkpoint, 'kill', resume from disk, redo that step: identical."""
    cfg = tiny_config(tmp_path, host, "training.checkpoint_every_steps=2", "training.n_critic=2")
    first = Trainer.start(cfg, tmp_path / "run", host=host)
    assert first.fit(max_steps=saved_at + 1).status == "paused"
    uninterrupted = _state(first)
    uninterrupted_opt = first.critic_opt.state_dict()["state"]

    resumed = Trainer.resume(tmp_path / "run", host=host)
    assert resumed.step == saved_at
    resumed.fit(max_steps=saved_at + 1)
    after = _state(resumed)
    assert after.keys() == uninterrupted.keys()
    assert all(torch.equal(after[k], uninterrupted[k]) for k in after)
    for i, state in resumed.critic_opt.state_dict()["state"].items():
        assert torch.equal(state["square_avg"], uninterrupted_opt[i]["square_avg"])


def test_resume_finishes_and_keeps_metrics_consistent(tmp_path, host):
    cfg = tiny_config(tmp_path, host, "training.checkpoint_every_steps=0")
    Trainer.start(cfg, tmp_path / "run", host=host).fit(max_steps=6)
    result = Trainer.resume(tmp_path / "run", host=host).fit()
    assert result.status == "finished" and result.step == 8
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, host):
    cfg = tiny_config(tmp_path, host, 'losses.poison={"weight": 1.0, "after": 5}')
    trainer = Trainer.start(cfg, tmp_path / "run", host=host)
    with pytest.raises(TrainingDiverged, match="'poison'") as info:
        trainer.fit()
    assert "critic update" in str(info.value)
    assert all(torch.isfinite(p).all() for p in trainer.critic.parameters())  # the bad update was not applied
    last = load_checkpoint(tmp_path / "run/checkpoints/last.ckpt")
    assert last["step"] == 4 and last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["critic"].values() if v.is_floating_point())


class _CtrlCAtEpoch2(Reporter):
    def epoch_start(self, epoch, epochs, batches, start_batch):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the trainer's handler turns it into a clean stop


def test_ctrl_c_saves_where_it_stopped(tmp_path, host):
    cfg = tiny_config(tmp_path, host, "training.checkpoint_every_steps=0")
    before = signal.getsignal(signal.SIGINT)
    result = Trainer.start(cfg, tmp_path / "run", host=host, reporter=_CtrlCAtEpoch2()).fit()
    assert result.status == "interrupted" and result.step == 5
    assert signal.getsignal(signal.SIGINT) is before
    resumed = Trainer.resume(tmp_path / "run", host=host)
    assert (resumed.epoch, resumed.batch, resumed.step) == (1, 1, 5)


def test_early_stopping_rule(tmp_path, host):
    rule = ("training.early_stopping.warmup=3", "training.early_stopping.patience=2")
    cfg = tiny_config(tmp_path, host, *rule)
    rule = EarlyStopping(cfg.training.early_stopping)
    history = [0.1, 0.1, 5, 6, 4, 4.5, 7]
    improved = [rule.update(e, {"val_abs_w": w}) for e, w in enumerate(history, 1)]
    assert improved == [False, False, True, False, True, False, False]
    assert rule.best_epoch == 5 and rule.stopped


def test_resume_refuses_changed_data_and_missing_checkpoint(tmp_path, host):
    cfg = tiny_config(tmp_path, host)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no checkpoints/last\.ckpt"):
        Trainer.resume(tmp_path / "empty", host=host)
    Trainer.start(cfg, tmp_path / "run", host=host).fit(max_steps=5)
    resumed = Trainer.resume(tmp_path / "run", host=host)
    resumed.data_key = "something-else"
    with pytest.raises(CheckpointError, match="dataset changed"):
        resumed.fit()


def test_generate_from_run_and_generator_only_checkpoint(tmp_path, host):
    cfg = tiny_config(tmp_path, host, "training.epochs=1")
    Trainer.start(cfg, tmp_path / "run", host=host).fit()
    model = load_generation_model(tmp_path / "run", device="cpu", host=host)
    assert model.checkpoint.name == "last.ckpt" and not model.generator.training
    out = generate(model, 5, seed=3, batch_size=2)
    assert out.images.shape == (5, 2, 32, 32) and out.audio.shape == (5, 2, cfg.audio.spec().num_samples)
    assert torch.isfinite(out.audio).all()
    again = generate(model, 5, seed=3, batch_size=5)
    assert torch.allclose(out.images, again.images, atol=1e-6)
    assert not torch.allclose(out.images, generate(model, 5, seed=4).images)

    imported = tmp_path / "imported.ckpt"
    save_checkpoint(imported, new_payload(dump_config(cfg), model.generator.state_dict(), critic=None))
    from_import = load_generation_model(imported, device="cpu", host=host)
    assert torch.allclose(generate(from_import, 5, seed=3).images, out.images, atol=1e-6)

    wrong = {k: v[:1] if v.dim() else v for k, v in model.generator.state_dict().items()}
    save_checkpoint(imported, new_payload(dump_config(cfg), wrong, critic=None))
    with pytest.raises(CheckpointError, match="do not fit generator"):
        load_generation_model(imported, device="cpu", host=host)


def test_fd_reference_audio_is_rendered_in_chunks_and_capped(tmp_path, monkeypatch):
    from ssgan_core.generation import render_audio
    from ssgan_core.training import trainer as training

    host = tiny_host()
    cfg = tiny_config(tmp_path, host, "training.fd_every_epoch=true", "data.source.count=40")
    trainer = Trainer(cfg, tmp_path / "run", host=host, device="cpu")
    trainer.prepare()
    whole = trainer.images.take(trainer.val_idx)
    with trainer.side_rng():
        expected = render_audio(whole, trainer.transform, trainer.inverter, batch_size=4)
    assert trainer.val_audio is not None and torch.equal(trainer.val_audio, expected)

    monkeypatch.setattr(training, "FD_REFERENCE_CLIPS", 5)
    capped = Trainer(cfg, tmp_path / "capped", host=host, device="cpu")
    capped.prepare()
    assert len(capped.val_idx) == 8 and capped.val_audio is not None and len(capped.val_audio) == 5
    chosen = [i for i in range(8) if any(torch.equal(capped.val_audio[j], expected[i]) for j in range(5))]
    assert len(chosen) == 5  # five of the eight clips, each rendered as before


def test_fp16_off_cuda_is_a_config_error_and_channels_last_trains(tmp_path, host):
    from ssgan_core.errors import ConfigError

    cfg = tiny_config(tmp_path, host, 'training.precision="fp16"')
    with pytest.raises(ConfigError, match=r"fp16.*needs a CUDA device.*bf16"):
        Trainer(cfg, tmp_path / "run", host=host, device="cpu")

    cfg = tiny_config(tmp_path, host, "training.channels_last=true", 'training.precision="bf16"')
    trainer = Trainer(cfg, tmp_path / "run", host=host, device="cpu")
    trainer.prepare()
    assert trainer.critic.conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    real = trainer._real_batch(trainer.train_idx[:4])
    assert real.is_contiguous(memory_format=torch.channels_last)
    values = trainer.stepper.step(real, batch=0)
    assert all(torch.isfinite(v).all() for v in values.values())


def test_checkpoint_keeps_the_format_1_keys(tmp_path, host):
    """The state registry writes the keys checkpoints had before it (old runs resume), plus the
    informational ``built_with`` record (shape, part versions) that loading does not need."""
    cfg = tiny_config(tmp_path, host, "training.ema_decay=0.5")
    trainer = Trainer(cfg, tmp_path / "run", host=host)
    old_keys = {"format", "format_version", "config", "generator", "generator_train", "critic", "optimizers"}
    old_keys |= {"schedulers", "epoch", "step", "generator_steps", "rng", "best", "early_stopping"}
    old_keys |= {"position", "data_key", "metrics"}
    payload = trainer.state_dict()
    assert set(payload) == old_keys | {"built_with"}
    del payload["built_with"]
    assert set(payload["position"]) == {"batch", "order", "sums", "counts", "seconds", "global_batch"}
    del payload["position"]["global_batch"], payload["generator_steps"]  # as a file from before them
    trainer.load_state(payload)
    assert trainer.progress.global_batch is None and trainer.progress.generator_steps == 0


def test_batch_scope_splits_a_global_batch_among_ranks(tmp_path, host):
    from ssgan_core.errors import ConfigError
    from ssgan_core.training.distributed import World
    from ssgan_core.training.trainer import per_rank_batch

    two = World(rank=1, size=2)
    assert per_rank_batch(tiny_config(tmp_path, host), two) == 4  # per-rank: as configured
    assert per_rank_batch(tiny_config(tmp_path, host, 'training.batch_scope="global"'), two) == 2
    odd = tiny_config(tmp_path, host, 'training.batch_scope="global"', "training.batch_size=5")
    with pytest.raises(ConfigError, match="does not split over 2 ranks"):
        per_rank_batch(odd, two)
