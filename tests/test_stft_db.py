"""The ``stft-db`` transform: the paper's STFT facts, both scalings, stereo balance, bad input."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal
import torch
from pydantic import ValidationError

from ssgan_core.errors import ConfigError, InputError
from ssgan_core.interfaces import AudioSpec
from ssgan_plugins.paper.griffin_lim import griffin_lim
from ssgan_plugins.paper.stft_db import StftDbOptions, StftDbTransform, build_stft_db
from tests.synth import synth_kick, synth_tone

KICK = AudioSpec(44_100, 0.6)
TONE = AudioSpec(44_100, 1.5)


def make(scaling: str = "level", audio: AudioSpec = KICK, **options) -> StftDbTransform:
    return build_stft_db(StftDbOptions(scaling=scaling, **options), audio)


def kicks(*pans: float) -> torch.Tensor:
    return torch.from_numpy(np.stack([synth_kick(pan=p, f0=45 + 10 * i, seed=i) for i, p in enumerate(pans)]))


def channel_db(magnitude: torch.Tensor) -> torch.Tensor:
    """Energy of each channel in dB: (B, 2, F, T) -> (B, 2)."""
    return 10 * torch.log10(magnitude.square().sum(dim=(2, 3)))


def test_paper_stft_facts() -> None:
    kick, tone = make(), make(audio=TONE)
    assert (kick.stft_spec.hop_length, tone.stft_spec.hop_length) == (103, 259)
    spec = kick.stft_spec
    assert (spec.n_fft, spec.win_length, spec.center, spec.length) == (510, 510, True, 26_460)
    np.testing.assert_allclose(spec.window.numpy(), scipy.signal.windows.kaiser(510, 12.0), rtol=1e-6)
    assert "window" in dict(kick.named_buffers())
    for transform, audio in ((kick, kicks(0.0, 0.5)), (tone, torch.from_numpy(synth_tone()[None]))):
        image = transform.encode(audio)
        assert image.shape == (audio.shape[0], 2, 256, 256) and image.dtype == torch.float32
        assert image.min() >= -1 and image.max() <= 1


def test_magnitude_matches_librosa_stft() -> None:
    audio = kicks(0.3)
    ours = make().magnitude(audio)[0].numpy()
    window = scipy.signal.windows.kaiser(510, 12.0)
    reference = np.abs(
        librosa.stft(
            audio[0].numpy(), n_fft=510, hop_length=103, window=window, center=True, pad_mode="reflect"
        )
    )[..., :256]
    np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-3 * reference.max())


@pytest.mark.parametrize("audio", [KICK, TONE])
def test_level_mode_round_trips_magnitudes_above_the_floor(audio: AudioSpec) -> None:
    transform = make(audio=audio)
    clips = (
        kicks(0.0, -0.6) if audio is KICK else torch.from_numpy(np.stack([synth_tone(), synth_tone(f0=110)]))
    )
    magnitude = transform.magnitude(clips)
    decoded = transform.decode(transform.encode(clips)).magnitude
    db_true, db_back = 20 * torch.log10(magnitude.clamp_min(1e-5)), 20 * torch.log10(decoded)
    above = db_true > db_true.amax(dim=(1, 2, 3), keepdim=True) - 80 + 1e-3
    assert above.sum() > 2000  # narrow-band sounds: most bins sit at the floor
    assert (db_true - db_back)[above].abs().max() < 1e-3


def test_level_mode_stores_the_floor_as_silence() -> None:
    clips = kicks(0.0, 0.5)
    silence, level = make().encode(clips), make(level_floor="level").encode(clips)
    magnitude_db = 20 * torch.log10(make().magnitude(clips).clamp_min(1e-5))
    below = magnitude_db <= magnitude_db.amax(dim=(1, 2, 3), keepdim=True) - 80
    assert below.float().mean() > 0.5  # a kick is mostly floor
    assert torch.all(silence[below] == -1.0)
    # level: the floor keeps its own level (peak - 80 dB on the -54..46 dB scale), one per item
    floors = torch.stack([level[i][below[i]].unique() for i in range(len(clips))]).squeeze(1)
    expected = (magnitude_db.amax(dim=(1, 2, 3)) - 80 + 54) / 100 * 2 - 1
    torch.testing.assert_close(floors, expected)
    assert torch.all(floors > -0.9)
    # Above the floor the two are the same image.
    torch.testing.assert_close(silence[~below], level[~below])


def test_level_mode_keeps_stereo_balance_and_loudness() -> None:
    transform = make()
    clips = kicks(0.0, 0.5, -0.75)
    decoded = transform.decode(transform.encode(clips)).magnitude
    balance_true = channel_db(transform.magnitude(clips)).diff(dim=1)
    balance_back = channel_db(decoded).diff(dim=1)
    # pan 0.5 -> left at half amplitude: -6 dB relative to right.
    assert balance_true[1].item() == pytest.approx(6.02, abs=0.05)
    torch.testing.assert_close(balance_back, balance_true, atol=0.05, rtol=0)
    # A clip 20 dB quieter decodes 20 dB quieter.
    quiet = transform.decode(transform.encode(clips[:1] * 0.1)).magnitude
    assert (channel_db(decoded[:1]) - channel_db(quiet)).mean().item() == pytest.approx(20.0, abs=0.1)


def test_level_mode_balance_survives_griffin_lim() -> None:
    transform = make()
    clips = kicks(0.5)
    audio = griffin_lim(transform.decode(transform.encode(clips)).magnitude, transform.stft_spec, 10, 0.99)
    rms = audio.square().mean(dim=-1).sqrt()[0]
    assert 20 * torch.log10(rms[1] / rms[0]).item() == pytest.approx(6.02, abs=0.5)


def test_paper_mode_scales_each_channel_and_loses_balance_and_loudness() -> None:
    transform = make("paper")
    clips = kicks(0.5)
    image = transform.encode(clips)
    assert torch.allclose(image.amin(dim=(2, 3)), torch.tensor(-1.0)) and torch.allclose(
        image.amax(dim=(2, 3)), torch.tensor(1.0)
    )
    decoded = transform.decode(image).magnitude
    assert decoded.amax().item() == pytest.approx(100.0, rel=1e-4)  # +40 dB
    assert decoded.amin().item() == pytest.approx(0.01, rel=1e-4)  # -40 dB
    # The -6 dB left channel comes back as loud as the right one: balance is lost ...
    assert abs(channel_db(decoded).diff(dim=1).item()) < 1.0
    # ... and so is loudness: a 20 dB quieter clip encodes to the same image.
    torch.testing.assert_close(transform.encode(clips * 0.1), image, atol=1e-4, rtol=0)


def test_paper_mode_silent_channel_is_minus_one() -> None:
    clips = kicks(0.0)
    clips[:, 1] = 0
    image = make("paper").encode(clips)
    assert torch.all(image[:, 1] == -1)


def test_batched_encode_equals_one_by_one() -> None:
    transform, clips = make(), kicks(0.0, 0.4, -0.4)
    batched = transform.encode(clips)
    single = torch.cat([transform.encode(clips[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single)


def test_window_follows_the_module_dtype() -> None:
    transform = make().double()
    assert transform.stft_spec.window.dtype == torch.float64
    assert transform.encode(kicks(0.0).double()).dtype == torch.float64


@pytest.mark.parametrize(
    ("call", "shape", "expected"),
    [
        ("encode", (2, 26_460), "(batch, 2, 26460)"),
        ("encode", (1, 1, 26_460), "(batch, 2, 26460)"),
        ("encode", (1, 2, 1000), "(batch, 2, 26460)"),
        ("decode", (2, 256, 256), "(batch, 2, 256, 256)"),
        ("decode", (1, 2, 256, 255), "(batch, 2, 256, 256)"),
    ],
)
def test_wrong_shape_is_an_input_error_naming_the_expected_shape(call, shape, expected) -> None:
    with pytest.raises(InputError) as info:
        getattr(make(), call)(torch.zeros(shape))
    assert expected in str(info.value) and str(tuple(shape)) in str(info.value)


def test_integer_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match="dtype"):
        make().encode(torch.zeros(1, 2, 26_460, dtype=torch.int16))


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError):
        StftDbOptions(window="hann")
    with pytest.raises(ValidationError, match="level_max_db"):
        StftDbOptions(level_min_db=10, level_max_db=0)
    with pytest.raises(ValidationError):
        StftDbOptions(n_fft=1024)
    with pytest.raises(ConfigError, match="n_fft"):
        make(audio=AudioSpec(44_100, 0.005))
    assert StftDbOptions().scaling == "level"
    for name, field in StftDbOptions.model_fields.items():
        assert field.description, name


def test_registered_as_stft_db() -> None:
    from ssgan_core.plugins import registry

    transform = registry("transform").create("stft-db", {"scaling": "paper"}, KICK)
    assert isinstance(transform, StftDbTransform) and transform.options.scaling == "paper"


def test_cpu_stft_matches_torch_stft() -> None:
    from ssgan_plugins.paper.stft_db import kaiser_window, stft_cpu

    audio = torch.randn(3, 4000, generator=torch.Generator().manual_seed(0))
    for n_fft, hop in ((510, 103), (64, 15)):
        window = kaiser_window(n_fft, 12.0)
        expected = torch.stft(
            audio, n_fft, hop, n_fft, window, center=True, pad_mode="reflect", return_complex=True
        )
        got = stft_cpu(audio, n_fft, hop, window, frames=20)
        assert got.shape == (3, n_fft // 2 + 1, 20)
        assert torch.allclose(got, expected[..., :20], atol=1e-5 * float(expected.abs().max()))
