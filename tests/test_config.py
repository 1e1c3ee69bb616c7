"""Config tree: presets hold the paper's numbers, overrides, files, and clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ssgan_cli.main import app
from ssgan_core.config import (
    RunConfig,
    apply_overrides,
    deep_merge,
    load_config_file,
    parse_override,
    resolve_config,
)
from ssgan_core.errors import ConfigError

runner = CliRunner()


def test_paper_kicks_preset_holds_the_papers_numbers():
    cfg = resolve_config("paper-kicks")
    assert cfg.audio.sample_rate == 44_100
    assert cfg.audio.seconds == 0.6
    assert cfg.generator.options["latent_dim"] == 128
    assert cfg.training.batch_size == 16
    assert cfg.training.n_critic == 5
    assert cfg.data.val_fraction == pytest.approx(0.2)
    assert cfg.inverter.options["iterations"] == 10
    assert cfg.transform.options["n_fft"] == 510
    assert cfg.losses["gradient-penalty"]["weight"] == 5.0
    assert cfg.losses["feature-matching"]["weight"] == 0.35
    g, c = cfg.training.generator_optimizer, cfg.training.critic_optimizer
    assert g.name == c.name == "rmsprop"
    assert c.lr > g.lr
    assert cfg.training.schedule == "epochs" and cfg.training.epochs == 14


@pytest.mark.parametrize(
    ("preset", "seconds", "source"),
    [
        ("paper-kicks", 0.6, "synthetic-kicks"),
        ("paper-diverse-kicks", 0.6, "synthetic-kicks"),
        ("paper-instruments", 1.5, "synthetic-tones"),
    ],
)
def test_all_paper_presets_resolve(preset, seconds, source):
    cfg = resolve_config(preset)
    assert cfg.preset == preset
    assert cfg.audio.seconds == seconds
    assert cfg.data.source.name == source
    assert cfg.audio.spec().num_samples == int(seconds * 44_100)


def test_overrides_parse_json_values_and_nested_paths():
    assert parse_override("training.batch_size=8") == (["training", "batch_size"], 8)
    assert parse_override("output.run_name=my run") == (["output", "run_name"], "my run")
    assert parse_override('training.device="cpu"') == (["training", "device"], "cpu")
    data = apply_overrides({"a": {"b": 1, "c": 2}}, ["a.b=3", "a.d=[1,2]"])
    assert data == {"a": {"b": 3, "c": 2, "d": [1, 2]}}
    with pytest.raises(ConfigError, match=r"section\.field=value"):
        parse_override("training.batch_size")


def test_changing_a_part_name_drops_the_old_plugins_options():
    merged = deep_merge({"t": {"name": "a", "only_a": 1}}, {"t": {"name": "b"}})
    assert merged == {"t": {"name": "b"}}
    merged = deep_merge({"t": {"name": "a", "x": 1}}, {"t": {"y": 2}})
    assert merged == {"t": {"name": "a", "x": 1, "y": 2}}


def test_override_applies_after_preset():
    cfg = resolve_config("paper-kicks", overrides=["training.batch_size=4", "inverter.iterations=32"])
    assert cfg.training.batch_size == 4
    assert cfg.inverter.options["iterations"] == 32


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("training.batch_size=0", "training.batch_size: Input should be greater than or equal to 1"),
        ("training.batchsize=3", "training.batchsize: unknown field"),
        ("inverter.iterations=many", "inverter.iterations: Input should be a valid integer"),
        ("generator.name=paper-generater", "Did you mean 'paper-generator'"),
        ("training.early_stopping.metric=loss", "training.early_stopping.metric: Input should be"),
    ],
)
def test_bad_fields_name_the_path(override, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        resolve_config("paper-kicks", overrides=[override])


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'paper-kicks'"):
        resolve_config("paper-kick")


def test_config_file_toml_and_json(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('preset = "paper-instruments"\n[training]\nbatch_size = 8\n')
    cfg = resolve_config(config_file=toml)
    assert cfg.audio.seconds == 1.5 and cfg.training.batch_size == 8
    saved = tmp_path / "config.json"
    saved.write_text(json.dumps(cfg.model_dump(mode="json")))
    again = resolve_config(config_file=saved)
    assert again == cfg
    broken = tmp_path / "broken.toml"
    broken.write_text("[training\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config_file(broken)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config_file(tmp_path / "missing.toml")


def test_defaults_alone_are_a_valid_run():
    assert isinstance(resolve_config(), RunConfig)


def test_overrides_without_a_preset_apply_over_the_defaults():
    cfg = resolve_config(overrides=["inverter.iterations=5"])
    assert cfg.inverter.name == "griffin-lim"
    assert cfg.inverter.options["iterations"] == 5


def test_cli_config_show_and_errors():
    ok = runner.invoke(app, ["config", "show", "--preset", "paper-kicks", "--set", "seed=7", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["seed"] == 7
    bad = runner.invoke(app, ["config", "show", "--preset", "paper-kicks", "--set", "training.n_critic=-1"])
    assert bad.exit_code == 2
    assert "training.n_critic" in bad.output
    assert "Traceback" not in bad.output
