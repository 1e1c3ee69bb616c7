"""Parts swap (issue 13): mel, mag-if, SpecGAN networks and the hinge loss, alone and
through every command (train, generate, encode, invert, evaluate), on tiny sizes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import Tensor
from typer.testing import CliRunner

from ssgan_cli.main import app
from ssgan_core import (
    AudioSpec,
    BuildContext,
    ConfigError,
    Critic,
    ImageShape,
    Inverter,
    LossContext,
    spectral_convergence,
)
from ssgan_core.config import resolve_config, validate_config
from ssgan_core.generation import build_run_parts, render_audio
from ssgan_core.plugins import PluginHost, PluginInfo
from ssgan_plugins.specgan.hinge import Hinge
from ssgan_plugins.specgan.networks import (
    SpecGanCriticOptions,
    SpecGanGeneratorOptions,
    build_specgan_critic,
    build_specgan_generator,
)
from ssgan_plugins.spectra.mag_if import MagIfOptions, MagIfTransform
from ssgan_plugins.spectra.mel import MelOptions, MelTransform, mel_filterbank
from tests import tiny_parts
from tests.synth import synth_kick, synth_tone

runner = CliRunner()
SMALL_NETS = {"width": 4, "max_width": 16}


def kicks(n: int = 4, seconds: float = 0.6) -> Tensor:
    return torch.from_numpy(
        np.stack([synth_kick(seconds, f0=50 + 5 * i, pan=0.2 * i, seed=i) for i in range(n)])
    )


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("shape", [(2, 128, 128), (2, 256, 256), (4, 128, 128), (4, 64, 32)])
def test_specgan_networks_size_themselves_from_the_image(shape) -> None:
    context = BuildContext.of(AudioSpec(), ImageShape(*shape))
    generator = build_specgan_generator(SpecGanGeneratorOptions(**SMALL_NETS), context)
    critic = build_specgan_critic(SpecGanCriticOptions(**SMALL_NETS), context)
    images = generator(generator.sample_latent(3))
    scores, features = critic.forward_features(images)
    assert images.shape == (3, *shape) and images.abs().max() <= 1
    assert scores.shape == (3,) and set(features) == set(critic.feature_layers) and len(features) == 2


def test_specgan_refuses_sizes_it_cannot_reach() -> None:
    context = BuildContext.of(AudioSpec(), ImageShape(2, 100, 128))
    with pytest.raises(ConfigError, match=r"specgan-critic: image \(2, 100, 128\) has freq size 100"):
        build_specgan_critic(SpecGanCriticOptions(), context)


# --------------------------------------------------------------------------- hinge


class ScoresAreMeans(Critic):
    def forward_features(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return image.mean(dim=(1, 2, 3)), {}


def test_hinge_loss_values() -> None:
    real = torch.tensor([2.0, 0.5]).view(2, 1, 1, 1)  # margins: 0 and 0.5
    fake = torch.tensor([-2.0, 0.0]).view(2, 1, 1, 1)  # margins: 0 and 1
    ctx = LossContext(real, fake, ScoresAreMeans())
    assert float(Hinge().critic_loss(ctx)) == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert float(Hinge().generator_loss(ctx)) == pytest.approx(1.0)


# --------------------------------------------------------------------------- transforms


def test_mel_filterbank_is_librosas() -> None:
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(1025, 128, 44_100, 0.0, 22_050.0).numpy()
    theirs = librosa.filters.mel(sr=44_100, n_fft=2048, n_mels=128, norm=None, htk=False)
    assert np.abs(ours - theirs).max() < 1e-6 and (ours.sum(axis=1) > 0).all()


def test_mel_round_trip_keeps_the_bands() -> None:
    """Decode is least squares: the bands come back (but for the clip at zero and the dB
    floor), the detail inside a band does not. Measured on these kicks: SC 0.144 of the
    linear magnitude, 0.016 of the bands."""
    transform = MelTransform(MelOptions(), AudioSpec())
    audio = kicks()
    image = transform.encode(audio)
    assert tuple(image.shape[1:]) == transform.image_shape == (2, 128, 128)
    decoded = transform.decode(image)
    true = decoded.spec.magnitude(audio)
    assert decoded.phase is None and decoded.magnitude.shape == true.shape
    assert float(spectral_convergence(true, decoded.magnitude).mean()) < 0.2
    bands_true, bands_back = (torch.matmul(transform.bands, m) for m in (true, decoded.magnitude))
    assert float(spectral_convergence(bands_true, bands_back).mean()) < 0.03


class Refuses(Inverter):
    def forward(self, magnitude: Tensor, spec) -> Tensor:
        raise AssertionError("mag-if carries phase: no inverter may run")


def test_mag_if_reconstructs_audio_without_an_inverter() -> None:
    """SC of the rebuilt audio's magnitude, measured: 0.0049 on these kicks (the dropped
    Nyquist bin, which the kick's click excites), 2e-5 on tones."""
    transform = MagIfTransform(MagIfOptions(), AudioSpec())
    assert transform.image_shape == (4, 256, 128)
    spec = transform.stft_spec
    for audio, bound in ((kicks(), 0.01), (torch.from_numpy(np.stack([synth_tone(0.6, seed=1)])), 1e-3)):
        back = render_audio(transform.encode(audio), transform, Refuses())
        assert back.shape == audio.shape
        assert float(spectral_convergence(spec.magnitude(audio), spec.magnitude(back)).mean()) < bound


# --------------------------------------------------------------------------- the build check


def test_a_generator_that_misses_the_transforms_shape_is_named() -> None:
    host = PluginHost.with_builtins(tiny_parts)
    cfg = validate_config({"generator": {"name": "tiny-gen"}}, host)  # stft-db: (2, 256, 256)
    with pytest.raises(ConfigError, match=r"generator 'tiny-gen' makes images of shape \(2, 32, 32\), but "
                       r"transform 'stft-db' makes \(2, 256, 256\)"):  # fmt: skip
        build_run_parts(cfg, host)


def test_a_critic_that_cannot_take_the_image_is_named() -> None:
    host = PluginHost.with_builtins(tiny_parts)
    data = {
        "transform": {"name": "mel", "n_mels": 16, "frames": 16, "n_fft": 4096},
        "generator": {"name": "specgan-generator", **SMALL_NETS},
        "critic": {"name": "tiny-critic"},  # a dense layer sized for 32 x 32
    }
    with pytest.raises(ConfigError, match=r"critic 'tiny-critic' cannot take images of shape \(2, 16, 16\)"):
        build_run_parts(validate_config(data, host), host)


def test_paper_networks_refuse_other_shapes_in_one_line() -> None:
    cfg = resolve_config("paper-kicks", overrides=["transform.name=mel"])
    with pytest.raises(ConfigError, match=r"paper-generator: serves only the paper's \(2, 256, 256\) images, "
                       r"but the transform makes \(2, 128, 128\)"):  # fmt: skip
        build_run_parts(cfg)


def test_paper_networks_take_mel_at_the_papers_shape() -> None:
    """Swapping only the transform works whenever its image is the paper's: mel 256 x 256."""
    cfg = resolve_config(
        "paper-kicks", overrides=["transform.name=mel", "transform.n_mels=256", "transform.frames=256"]
    )
    parts = build_run_parts(cfg)
    assert parts.context.image == (2, 256, 256) and parts.critic is not None


@pytest.mark.parametrize("preset", ["specgan-kicks", "gansynth-kicks"])
def test_presets_build_at_full_size(preset) -> None:
    """The presets as shipped (not the tiny test sizes) build and pass the shape check."""
    from ssgan_core.generation import build_all_parts

    built = build_all_parts(resolve_config(preset))
    assert "generator specgan-generator" in built and "critic specgan-critic" in built


def test_old_factories_get_the_paper_shape_from_a_bare_audio_spec() -> None:
    host = PluginHost(strict=True)
    from ssgan_plugins.specgan import plugin

    host.add_plugin(plugin, PluginInfo("specgan", "ssgan", "test"))
    generator = host.registry("generator").create("specgan-generator", SMALL_NETS, AudioSpec())
    assert generator(generator.sample_latent(1)).shape == (1, 2, 256, 256)


# --------------------------------------------------------------------------- end to end

TINY = [
    "data.source.count=12",
    "audio.seconds=0.05",
    "training.batch_size=4",
    "training.schedule=steps",
    "training.steps=2",
    "training.eval_every=2",
    "training.preview_count=2",
    "output.preview_wavs=1",
    "inverter.iterations=2",
]
SPECGAN = [f"{net}.{k}={v}" for net in ("generator", "critic") for k, v in SMALL_NETS.items()]
RUNS = {
    # name: (preset, extra settings, image shape)
    "gansynth": ("gansynth-kicks", [*SPECGAN, "transform.n_fft=128", "transform.frames=64"], (4, 64, 64)),
    "specgan": (
        "specgan-kicks",
        # griffin-lim, not the preset's pghi: its first call compiles (numba), seconds to minutes
        [
            *SPECGAN,
            "transform.n_fft=256",
            "transform.n_mels=32",
            "transform.frames=32",
            "inverter.name=griffin-lim",
        ],
        (2, 32, 32),
    ),
    # Only the transform swapped (mag-if -> mel): the networks resize, the loss and the rest stay.
    "mel": (
        "gansynth-kicks",
        [*SPECGAN, "transform.name=mel", "transform.n_fft=256", "transform.n_mels=16", "transform.frames=32"],
        (2, 16, 32),
    ),
}


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.mark.parametrize("name", list(RUNS))
def test_each_combination_trains_generates_encodes_inverts_and_evaluates(tmp_path, name) -> None:
    preset, extra, shape = RUNS[name]
    settings = [*TINY, *extra]
    run = tmp_path / "runs" / name
    result = runner.invoke(
        app, ["train", "--preset", preset, "--name", name, *_sets(f"output.runs_dir={run.parent}", *settings)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())["built_with"]
    assert saved["image_shape"] == list(shape) and saved["parts"]["transform"]["package"] == "ssgan"

    out = tmp_path / "generated"
    result = runner.invoke(app, ["generate", str(run), "-n", "2", "-o", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(out / "seed1_000.wav")
    assert rate == 44_100 and audio.shape == (2205, 2) and np.isfinite(audio).all()

    folder = tmp_path / "kicks"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"k{i}.wav", synth_kick(0.05, f0=60 + 10 * i, seed=i).T, 44_100)
    npy = tmp_path / "kicks.npy"
    config = ["--preset", preset, *_sets(*settings)]
    result = runner.invoke(app, ["encode", str(folder), "-o", str(npy), *config])
    assert result.exit_code == 0, result.output
    assert np.load(npy).shape == (3, *shape)
    assert json.loads((tmp_path / "kicks.npy.json").read_text())["built_with"]["image_shape"] == list(shape)

    result = runner.invoke(app, ["invert", str(npy), "-o", str(tmp_path / "inverted"), *config])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "inverted").glob("kicks_*.wav"))) == 3

    result = runner.invoke(app, ["evaluate", str(npy), "--reference", str(npy), "--json", *config])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["reference"]["clips"] == 3 and report["metrics"]["fd"] == pytest.approx(0, abs=1e-6)
    assert math.isfinite(report["metrics"]["roundtrip_sc"])


# --------------------------------------------------------------------------- built_with records


def test_a_part_saved_by_another_version_warns_and_loads() -> None:
    from ssgan_core import __version__
    from ssgan_core.generation import PartVersionWarning, warn_version_changes

    record = {"parts": {"generator": {"name": "paper-generator", "package": "ssgan", "version": "0.0.1"}}}
    with pytest.warns(PartVersionWarning, match=rf"x.ckpt: generator 'paper-generator' was saved with ssgan "
                      rf"0.0.1; ssgan {__version__} is installed"):  # fmt: skip
        warn_version_changes(record, "x.ckpt")


def test_a_recorded_image_shape_the_transform_no_longer_makes_is_refused() -> None:
    from ssgan_core.errors import CheckpointError
    from ssgan_core.generation import check_recorded_shape

    paper = ImageShape(2, 256, 256)
    check_recorded_shape(None, paper, "old.ckpt")  # written before the record: not checked here
    check_recorded_shape({"image_shape": [2, 256, 256]}, paper, "new.ckpt")
    with pytest.raises(CheckpointError, match=r"x.ckpt: was made for images of shape \(4, 64, 64\)"):
        check_recorded_shape({"image_shape": [4, 64, 64]}, paper, "x.ckpt")
