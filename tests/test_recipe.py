"""The recipe seam: step schedule, optimisers from config, weight average, run health, fine-tuning."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from ssgan_core.config import HealthConfig, OptimizerConfig, resolve_config
from ssgan_core.errors import InputError
from ssgan_core.health import check_period, image_stats, ranking_auc, summarise
from ssgan_core.training import Trainer, WeightAverage, build_optimizer
from tests.tiny_parts import TinyGenerator, tiny_config, tiny_host

STEPS = ("training.schedule=steps", "training.n_critic=2")


@pytest.fixture
def host():
    return tiny_host()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- schedule


def test_step_schedule_counts_generator_updates_and_periods(tmp_path, host):
    cfg = tiny_config(tmp_path, host, *STEPS, "training.steps=7", "training.eval_every=3")
    trainer = Trainer.start(cfg, tmp_path / "run", host=host)
    trainer.prepare()
    assert trainer.batches_per_epoch == 4  # 19 training clips / batch 4
    assert (trainer.period_batches, trainer.total_batches, trainer.periods) == (6, 14, 3)
    result = trainer.fit()
    assert result.status == "finished" and result.step == 14 and result.epochs == 3
    lines = _metrics(tmp_path / "run")
    assert [m["epoch"] for m in lines] == [1, 2, 3]
    assert [m["generator_steps"] for m in lines] == [3, 6, 7]  # the last period is the remainder
    assert [m["data_epochs"] for m in lines] == [1.5, 3.0, 3.5]
    assert lines[2]["lr_critic"] == pytest.approx(lines[0]["lr_critic"] * cfg.training.lr_gamma**2)


def test_step_schedule_length_does_not_depend_on_folder_size(tmp_path, host):
    steps = []
    for count in (24, 60):
        cfg = tiny_config(
            tmp_path / str(count), host, *STEPS, "training.steps=5", f"data.source.count={count}"
        )
        trainer = Trainer(cfg, tmp_path / str(count) / "run", host=host)
        trainer.prepare()
        steps.append((trainer.total_batches, trainer.periods))
    assert steps[0] == steps[1] == (10, 1)


def test_epoch_schedule_grows_with_the_folder(tmp_path, host):
    totals = []
    for count in (24, 60):
        cfg = tiny_config(tmp_path / str(count), host, f"data.source.count={count}")
        trainer = Trainer(cfg, tmp_path / str(count) / "run", host=host)
        trainer.prepare()
        totals.append(trainer.total_batches)
    assert totals == [2 * 4, 2 * 12]


def test_step_schedule_with_weight_average_resumes_exactly(tmp_path, host, one_thread):
    cfg = tiny_config(
        tmp_path,
        host,
        *STEPS,
        "training.steps=6",
        "training.eval_every=2",
        "training.ema_decay=0.5",
        "training.checkpoint_every_steps=3",
        'training.generator_optimizer={"name": "adam", "lr": 0.001}',
    )
    first = Trainer.start(cfg, tmp_path / "run", host=host)
    assert first.fit(max_steps=8).status == "paused"  # saved last at step 6, mid-period
    expected = {k: v.clone() for k, v in first.ema.network.state_dict().items()}
    expected_g = {k: v.clone() for k, v in first.generator.state_dict().items()}
    resumed = Trainer.resume(tmp_path / "run", host=host)
    assert resumed.step == 6
    resumed.fit(max_steps=8)
    assert all(torch.equal(v, expected[k]) for k, v in resumed.ema.network.state_dict().items())
    assert all(torch.equal(v, expected_g[k]) for k, v in resumed.generator.state_dict().items())


# --------------------------------------------------------------------------- optimisers, average


@pytest.mark.parametrize(
    ("name", "kind"),
    [("rmsprop", torch.optim.RMSprop), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_optimiser_comes_from_config(name, kind):
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = build_optimizer(OptimizerConfig(name=name, lr=0.01, betas=(0.0, 0.9), weight_decay=0.1), params)
    assert type(opt) is kind
    group = opt.param_groups[0]
    assert group["lr"] == 0.01 and group["weight_decay"] == 0.1
    if name != "rmsprop":
        assert group["betas"] == (0.0, 0.9)


def test_trainer_builds_each_network_its_optimiser(tmp_path, host):
    cfg = tiny_config(
        tmp_path,
        host,
        'training.generator_optimizer={"name": "adam", "lr": 0.0001}',
        'training.critic_optimizer={"name": "rmsprop", "lr": 0.0003}',
    )
    trainer = Trainer(cfg, tmp_path / "run", host=host)
    assert isinstance(trainer.generator_opt, torch.optim.Adam)
    assert isinstance(trainer.critic_opt, torch.optim.RMSprop)
    assert trainer.critic_opt.param_groups[0]["lr"] == 0.0003


def test_weight_average_moves_by_one_minus_decay():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, decay=0.75)
    old = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(4.0)
        net[1].running_mean.fill_(3.0)
    avg.update(net)
    assert torch.allclose(avg.network[0].weight, old + 1.0)  # 0.75 old + 0.25 (old + 4)
    assert torch.equal(avg.network[1].running_mean, torch.full((2,), 3.0))  # buffers copied
    assert not any(p.requires_grad for p in avg.network.parameters())


def test_checkpoint_samples_with_the_average(tmp_path, host):
    from ssgan_core.checkpoint import load_checkpoint

    cfg = tiny_config(tmp_path, host, "training.ema_decay=0.9", "training.epochs=1")
    trainer = Trainer.start(cfg, tmp_path / "run", host=host)
    trainer.fit()
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    key = next(iter(payload["generator"]))
    assert torch.equal(payload["generator"][key], trainer.ema.network.state_dict()[key])
    assert torch.equal(payload["generator_train"][key], trainer.generator.state_dict()[key])
    assert not torch.equal(payload["generator"][key], payload["generator_train"][key])


# --------------------------------------------------------------------------- health


def _healthy(**extra) -> dict:
    line = {
        "val_auc": 0.8,
        "val_abs_w": 3.0,
        "diversity": 10.0,
        "data_diversity": 12.0,
        "channel_gap": 0.02,
        "data_channel_gap": 0.01,
        "fd": 250.0,
        "data_fd": 100.0,
    }
    return {**line, **extra}


def test_health_is_quiet_on_a_healthy_run():
    history = [_healthy(val_abs_w=w) for w in (5.0, 4.0, 4.5, 3.0)]
    assert check_period(history, HealthConfig()) == []


def test_health_names_a_runaway_critic():
    history = [_healthy(val_auc=1.0, val_abs_w=w) for w in (10.0, 20.0, 40.0, 80.0)]
    assert [f.kind for f in check_period(history, HealthConfig())] == ["runaway-critic"]
    # Separating outright but not pulling away is not a runaway.
    steady = [_healthy(val_auc=1.0, val_abs_w=w) for w in (10.0, 20.0, 15.0, 30.0)]
    assert check_period(steady, HealthConfig()) == []


def test_health_names_a_frozen_critic():
    assert [f.kind for f in check_period([_healthy(val_auc=0.3)], HealthConfig())] == ["frozen-critic"]


def test_health_names_mode_collapse():
    found = check_period([_healthy(diversity=2.0)], HealthConfig())
    assert [f.kind for f in found] == ["mode-collapse"]
    assert "17%" in found[0].message


def test_health_names_the_noisy_channel():
    found = check_period([_healthy(channel_gap=0.3, louder_channel=1)], HealthConfig())
    assert [f.kind for f in found] == ["noisy-channel"] and "right" in found[0].message


def test_health_names_previews_far_from_the_data():
    found = check_period([_healthy(fd=3_000.0)], HealthConfig())
    assert [f.kind for f in found] == ["far-from-data"] and "30.0x" in found[0].message
    assert check_period([_healthy(fd=1_500.0)], HealthConfig()) == []  # 15x: within far_ratio 20
    # No floor (silent training clips) or no FD this period: nothing to judge.
    assert check_period([_healthy(fd=3_000.0, data_fd=None)], HealthConfig()) == []
    assert check_period([_healthy(fd=None)], HealthConfig()) == []


def test_far_from_data_advice_depends_on_whether_the_run_was_nearer_before():
    always_far = [_healthy(fd=f, epoch=n) for n, f in enumerate((4_000.0, 3_500.0, 3_000.0), 1)]
    assert "train longer" in check_period(always_far, HealthConfig())[0].advice
    drifted = [_healthy(fd=f, epoch=n) for n, f in enumerate((900.0, 300.0, 600.0, 3_000.0), 1)]
    advice = check_period(drifted, HealthConfig())[0].advice
    assert "period 2 (FD 300)" in advice and "moved away" in advice and "train longer" not in advice


def test_ranking_auc_and_image_stats():
    assert ranking_auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert ranking_auc(torch.tensor([0.0]), torch.tensor([1.0])) == 0.0
    assert ranking_auc(torch.tensor([1.0]), torch.tensor([1.0])) == 0.5
    same = torch.zeros(4, 2, 8, 8)
    stats = image_stats(same)
    assert stats["diversity"] == 0.0 and stats["channel_gap"] == 0.0
    noisy = same.clone()
    noisy[:, 1] = 1.0
    assert image_stats(noisy)["channel_gap"] == 1.0 and image_stats(noisy)["louder_channel"] == 1


def test_summary_verdicts():
    assert summarise([{"health": []}])[0]
    healthy, text = summarise([{"health": ["mode-collapse"]}, {"health": []}])
    assert healthy and "mode-collapse" in text
    healthy, text = summarise([{"health": ["frozen-critic"], "health_advice": ["frozen-critic: resume"]}])
    assert not healthy and "frozen-critic" in text and "resume" in text


def test_trainer_logs_health_fields(tmp_path, host):
    cfg = tiny_config(tmp_path, host, "training.epochs=1", "training.fd_every_epoch=true")
    Trainer.start(cfg, tmp_path / "run", host=host).fit()
    line = _metrics(tmp_path / "run")[-1]
    keys = ("val_auc", "diversity", "data_diversity", "channel_gap", "data_channel_gap", "health", "data_fd")
    for key in keys:
        assert key in line
    assert 0.0 <= line["val_auc"] <= 1.0 and isinstance(line["health"], list)
    assert line["data_fd"] > 0 and line["fd"] > 0


def test_fd_clips_extends_the_previews_with_more_fixed_latents(tmp_path, host):
    cfg = tiny_config(
        tmp_path, host, "training.epochs=1", "training.fd_every_epoch=true", "training.fd_clips=10"
    )
    trainer = Trainer.start(cfg, tmp_path / "run", host=host)
    assert len(trainer.fd_latents) == 10 and torch.equal(trainer.fd_latents[:4], trainer.preview_latents)
    trainer.fit()
    line = _metrics(tmp_path / "run")[-1]
    assert line["fd"] > 0 and line["data_fd"] > 0
    plain = Trainer(tiny_config(tmp_path, host), tmp_path / "other", host=host)
    assert torch.equal(plain.fd_latents, plain.preview_latents)  # default: the previews alone


def test_a_fresh_run_hands_the_generator_the_training_mean_once(tmp_path, host, monkeypatch):
    seen = []
    monkeypatch.setattr(TinyGenerator, "start_from_data", lambda self, mean: seen.append(mean.clone()))
    trainer = Trainer.start(tiny_config(tmp_path, host, "training.epochs=1"), tmp_path / "run", host=host)
    assert len(seen) == 1
    assert torch.allclose(seen[0], trainer.images_at(trainer.train_idx).mean(0), atol=1e-5)
    trainer.fit()
    Trainer.resume(tmp_path / "run", host=host)  # a resume keeps the trained weights
    assert len(seen) == 1


# --------------------------------------------------------------------------- fine-tuning


def test_init_from_loads_the_weights_and_trains(tmp_path, host):
    source = tiny_config(tmp_path / "a", host, "training.epochs=1")
    first = Trainer.start(source, tmp_path / "a" / "run", host=host)
    first.fit()
    cfg = tiny_config(
        tmp_path / "b", host, "training.epochs=1", f"training.init_from={tmp_path / 'a' / 'run'}"
    )
    second = Trainer.start(cfg, tmp_path / "b" / "run", host=host)
    for mine, theirs in zip(second.generator.parameters(), first.sampler.parameters(), strict=True):
        assert torch.equal(mine, theirs)
    for mine, theirs in zip(second.critic.parameters(), first.critic.parameters(), strict=True):
        assert torch.equal(mine, theirs)
    assert second.fit().status == "finished"


def test_init_from_refuses_other_transform_settings(tmp_path, host):
    source = tiny_config(tmp_path / "a", host, "training.epochs=1")
    Trainer.start(source, tmp_path / "a" / "run", host=host).fit()
    cfg = tiny_config(
        tmp_path / "b", host, "audio.seconds=0.2", f"training.init_from={tmp_path / 'a' / 'run'}"
    )
    with pytest.raises(InputError, match="audio settings differ"):
        Trainer.start(cfg, tmp_path / "b" / "run", host=host)


def test_cli_init_from_bad_checkpoint_is_a_one_line_error(tmp_path):
    from ssgan_cli.main import app

    bad = tmp_path / "nothing.ckpt"
    bad.write_bytes(b"not a checkpoint")
    args = ["train", "--init-from", str(bad), "--run-dir", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "nothing.ckpt" in result.output


# --------------------------------------------------------------------------- presets


def test_recommended_preset_is_the_measured_recipe():
    from ssgan_plugins.paper.options import PaperGeneratorOptions

    cfg = resolve_config("recommended")
    t = cfg.training
    assert t.schedule == "steps" and t.generator_optimizer.name == "adam" and t.ema_decay > 0
    assert t.early_stopping.metric == "fd"
    assert cfg.critic.options["norm"] == "layer"
    assert cfg.generator.options["dropout"] == 0.0  # the paper presets keep 0.2
    assert PaperGeneratorOptions(**resolve_config("paper-kicks").generator.options).dropout == 0.2
    assert cfg.inverter.name == "pghi"
    # Same image as the paper's kick preset, so it fine-tunes from the original weights.
    assert cfg.transform == resolve_config("paper-kicks").transform
    assert cfg.audio == resolve_config("paper-kicks").audio
    # The built-in kicks: recorded layers for the recipe, the sine kicks the paper preset was measured on.
    assert cfg.data.source.options["layers"] == "recorded"
    assert resolve_config("paper-kicks").data.source.options["layers"] == "sine"


# --------------------------------------------------------------------------- precision


def test_bf16_trains_and_keeps_weights_and_penalty_in_float32(tmp_path, host):
    from ssgan_core.interfaces import LossContext
    from ssgan_plugins.paper.losses import GradientPenalty

    cfg = tiny_config(tmp_path, host, "training.precision=bf16", "training.epochs=1")
    trainer = Trainer.start(cfg, tmp_path / "run", host=host)
    assert trainer.fit().status == "finished"
    assert all(p.dtype == torch.float32 for p in trainer.generator.parameters())
    real = trainer.images_at(trainer.train_idx[:4])
    with trainer.stepper.autocast():
        fake = trainer.generator(trainer.generator.sample_latent(4))
        assert fake.dtype == torch.bfloat16  # the forward pass really ran in bfloat16
        penalty = GradientPenalty().critic_loss(LossContext(real, fake, trainer.critic))
    assert penalty.dtype == torch.float32 and torch.isfinite(penalty)
