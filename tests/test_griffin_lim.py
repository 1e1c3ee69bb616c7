"""Fast Griffin-Lim: kernels match torch, quality matches librosa, momentum helps, the gate gates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ssgan_core.errors import InputError
from ssgan_core.interfaces import AudioSpec, StftSpec
from ssgan_plugins.paper.griffin_lim import (
    GriffinLim,
    GriffinLimOptions,
    build_griffin_lim,
    griffin_lim,
    noise_gate,
    spectral_convergence,
    stft,
)
from ssgan_plugins.paper.stft_db import StftDbOptions, build_stft_db
from tests.librosa_ref import librosa_griffinlim as librosa_gl
from tests.librosa_ref import start_phase
from tests.synth import synth_kick, synth_tone

KICK = AudioSpec(44_100, 0.6)
TONE = AudioSpec(44_100, 1.5)


@pytest.fixture(scope="module")
def kick_case() -> tuple[torch.Tensor, StftSpec]:
    """Two stereo kicks through the level-mode transform: encode -> decode -> magnitude."""
    transform = build_stft_db(StftDbOptions(), KICK)
    clips = np.stack([synth_kick(pan=0.4, seed=1), synth_kick(f0=48, decay=0.3, pan=-0.2, seed=2)])
    # A little noise makes the spectrum broadband, like real kicks.
    clips += np.random.default_rng(0).normal(0, 0.01, clips.shape).astype(np.float32)
    magnitude = transform.decode(transform.encode(torch.from_numpy(clips))).magnitude
    return magnitude, transform.stft_spec


def test_stft_kernels_match_torch() -> None:
    spec = build_stft_db(StftDbOptions(), KICK).stft_spec
    x = torch.randn(3, 2, spec.length)
    ours = stft(x, spec)
    ref = torch.stft(x.reshape(6, -1), 510, 103, 510, spec.window, return_complex=True).reshape(ours.shape)
    torch.testing.assert_close(ours, ref, atol=1e-3, rtol=1e-4)
    # The inverse inside griffin_lim is torch.istft's least-squares estimate:
    # zero iterations from zero phase = istft(magnitude).
    magnitude = ref[..., :256].abs()
    ours_inv = griffin_lim(magnitude, spec, iterations=0, init="zeros")
    ref_inv = torch.istft(
        magnitude.reshape(6, 256, 256).to(torch.complex64), 510, 103, 510, spec.window, length=spec.length
    )
    torch.testing.assert_close(ours_inv, ref_inv.reshape(3, 2, -1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("momentum", [0.99, 0.0])
def test_same_algorithm_as_librosa_from_zero_phase(kick_case, momentum: float) -> None:
    magnitude, spec = kick_case
    ours = spectral_convergence(magnitude, griffin_lim(magnitude, spec, 10, momentum, init="zeros"), spec)
    theirs = spectral_convergence(magnitude, librosa_gl(magnitude, spec, 10, momentum, None), spec)
    # Same updates from the same start: the same result, and never worse.
    assert torch.all(ours <= theirs * 1.01), (ours, theirs)
    assert torch.all((ours - theirs).abs() < 0.05 * theirs)


def test_random_start_no_worse_than_librosa(kick_case) -> None:
    """From librosa's own random start (its seeded phase), after 10 and 32 iterations."""
    magnitude, spec = kick_case
    for seed, iterations in ((0, 10), (1, 32)):
        phase = torch.from_numpy(start_phase(tuple(magnitude.shape), seed)).float()
        ours = griffin_lim(magnitude, spec, iterations, 0.99, phase=phase)
        theirs = librosa_gl(magnitude, spec, iterations, 0.99, seed)
        sc_ours, sc_theirs = (spectral_convergence(magnitude, x, spec) for x in (ours, theirs))
        assert torch.all(sc_ours <= sc_theirs * 1.005), (iterations, sc_ours, sc_theirs)


def test_random_init_is_as_good_as_librosa_on_average(kick_case) -> None:
    magnitude, spec = kick_case
    ours = torch.stack([griffin_lim(magnitude, spec, 10, 0.99, seed=s) for s in range(3)])
    theirs = torch.stack([librosa_gl(magnitude, spec, 10, 0.99, s) for s in range(3)])
    sc_ours, sc_theirs = (
        spectral_convergence(magnitude.repeat(3, 1, 1, 1), x.flatten(0, 1), spec).mean()
        for x in (ours, theirs)
    )
    assert sc_ours <= sc_theirs * 1.03, (sc_ours, sc_theirs)


def test_fast_griffin_lim_beats_plain_griffin_lim(kick_case) -> None:
    magnitude, spec = kick_case
    fast = spectral_convergence(magnitude, griffin_lim(magnitude, spec, 10, 0.99), spec)
    plain = spectral_convergence(magnitude, griffin_lim(magnitude, spec, 10, 0.0), spec)
    assert torch.all(fast < 0.95 * plain), (fast, plain)
    longer = spectral_convergence(magnitude, griffin_lim(magnitude, spec, 30, 0.99), spec)
    assert torch.all(longer < fast)


def test_output_uses_the_final_phase_not_the_initial_one(kick_case) -> None:
    magnitude, spec = kick_case
    start = spectral_convergence(magnitude, griffin_lim(magnitude, spec, 0), spec)
    after = spectral_convergence(magnitude, griffin_lim(magnitude, spec, 10), spec)
    assert torch.all(after < 0.7 * start), (after, start)


@pytest.mark.parametrize("audio", [KICK, TONE])
def test_output_length_and_batch_shape(audio: AudioSpec) -> None:
    transform = build_stft_db(StftDbOptions(), audio)
    clip = synth_kick(seconds=audio.seconds) if audio is KICK else synth_tone(seconds=audio.seconds)
    magnitude = transform.decode(transform.encode(torch.from_numpy(np.stack([clip] * 3)))).magnitude
    out = build_griffin_lim(GriffinLimOptions(iterations=2), audio)(magnitude, transform.stft_spec)
    assert out.shape == (3, 2, audio.num_samples) and out.dtype == torch.float32


@pytest.mark.parametrize("linked", [False, True])
def test_batched_equals_one_by_one(kick_case, linked: bool) -> None:
    magnitude, spec = kick_case
    batch = griffin_lim(magnitude, spec, 5, init="zeros", linked=linked)
    for i in range(magnitude.shape[0]):
        one = griffin_lim(magnitude[i : i + 1], spec, 5, init="zeros", linked=linked)
        torch.testing.assert_close(batch[i : i + 1], one)


def _phase_coherence(audio: torch.Tensor, spec: StftSpec) -> torch.Tensor:
    """Per item: ``sum Re(L conj R) / sum |L conj R|`` over the STFT; 1 = channels in phase."""
    s = stft(audio, spec, 256)
    cross = s[:, 0] * s[:, 1].conj()
    return cross.real.sum((-1, -2)) / cross.abs().sum((-1, -2))


def test_linked_phase_keeps_the_channels_in_phase(kick_case) -> None:
    magnitude, spec = kick_case
    # Channels with different spectra (a tilt on the right), as generated stereo has.
    tilt = torch.linspace(0.2, 2.0, magnitude.shape[-2]).unsqueeze(-1)
    stereo = torch.stack([magnitude[:, 0], magnitude[:, 1] * tilt], 1)
    free = griffin_lim(stereo, spec, 10)
    linked = griffin_lim(stereo, spec, 10, linked=True)
    assert (_phase_coherence(linked, spec) > 0.995).all()
    assert (_phase_coherence(free, spec) < 0.97).all()
    # Each channel still matches its own magnitude as well as without linking.
    sc_free, sc_linked = spectral_convergence(stereo, free, spec), spectral_convergence(stereo, linked, spec)
    assert (sc_linked < sc_free + 0.01).all()


def _linked_per_channel(
    magnitude: torch.Tensor, spec: StftSpec, iterations: int, phase: torch.Tensor
) -> torch.Tensor:
    """Linked fast Griffin-Lim written out per channel: every channel's ISTFT and STFT, phase of their sum."""
    batch, channels, bins, frames = magnitude.shape
    window = spec.window
    estimate = torch.polar(magnitude, phase)
    previous = None
    for _ in range(iterations):
        signal = torch.istft(
            estimate.reshape(-1, bins, frames),
            spec.n_fft,
            spec.hop_length,
            spec.win_length,
            window,
            length=spec.length,
        ).reshape(batch, channels, -1)
        accelerated = signal if previous is None else previous + 1.99 * (signal - previous)
        previous = signal
        spectrum = stft(accelerated, spec, frames)
        shared = spectrum.sum(1, keepdim=True)
        estimate = magnitude * shared / shared.abs().clamp_min(1e-10)
    return torch.istft(
        estimate.reshape(-1, bins, frames),
        spec.n_fft,
        spec.hop_length,
        spec.win_length,
        window,
        length=spec.length,
    ).reshape(batch, channels, -1)


def test_linked_iterates_one_mid_signal_with_the_same_result(kick_case) -> None:
    """The linked loop runs on the channels' sum (half the FFTs); it must equal iterating every channel."""
    magnitude, spec = kick_case
    tilt = torch.linspace(0.2, 2.0, magnitude.shape[-2]).unsqueeze(-1)
    stereo = torch.stack([magnitude[:, 0], magnitude[:, 1] * tilt], 1).double()
    phase = torch.rand(stereo.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 6.28
    ours = griffin_lim(stereo, spec, 6, 0.99, phase=phase, linked=True)
    torch.testing.assert_close(ours, _linked_per_channel(stereo, spec, 6, phase), atol=1e-5, rtol=1e-4)


def test_linked_chunks_keep_items_whole(kick_case) -> None:
    """CPU chunks run in threads; with three items and two threads a chunk must not split an item."""
    magnitude, spec = kick_case
    three = torch.cat([magnitude, magnitude[:1] * 0.5])
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one_thread = griffin_lim(three, spec, 4, linked=True)
        torch.set_num_threads(2)
        two_threads = griffin_lim(three, spec, 4, linked=True)
    finally:
        torch.set_num_threads(previous)
    torch.testing.assert_close(one_thread, two_threads)


def test_seeded_and_deterministic(kick_case) -> None:
    magnitude, spec = kick_case
    a, b = griffin_lim(magnitude, spec, 3, seed=7), griffin_lim(magnitude, spec, 3, seed=7)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, griffin_lim(magnitude, spec, 3, seed=8))


def test_noise_gate_silences_bins_below_threshold(kick_case) -> None:
    magnitude = torch.tensor([[[[100.0, 1.0, 0.02, 0.0]]], [[[1.0, 0.5, 1e-4, 1e-3]]]])
    gated = noise_gate(magnitude, -60.0)  # per item: keep >= peak / 1000
    torch.testing.assert_close(gated, torch.tensor([[[[100.0, 1.0, 0.0, 0.0]]], [[[1.0, 0.5, 0.0, 1e-3]]]]))
    assert noise_gate(magnitude, None) is magnitude

    # In use: a hiss floor 40 dB below the peak becomes silence.
    loud, spec = kick_case
    floor = loud.amax().item() * 10 ** (-40 / 20)
    noisy = loud.clamp_min(floor)
    quiet_bins = loud < floor
    hiss, gated = (
        stft(griffin_lim(noisy, spec, 10, gate_db=gate), spec, 256).abs()[quiet_bins].square().mean()
        for gate in (None, -38.0)
    )
    assert 10 * torch.log10(hiss / gated) > 10.0


def test_inverter_validates_input(kick_case) -> None:
    _, spec = kick_case
    inverter = GriffinLim(GriffinLimOptions(iterations=1))
    with pytest.raises(InputError, match="expected"):
        inverter(torch.ones(2, 256, 256), spec)
    with pytest.raises(InputError, match="256 freq bins"):
        inverter(torch.ones(1, 2, 100, 256), spec)
    with pytest.raises(InputError, match="dtype"):
        inverter(torch.ones(1, 2, 256, 256, dtype=torch.int32), spec)


def test_options() -> None:
    assert GriffinLimOptions().iterations == 10 and GriffinLimOptions().momentum == 0.99
    with pytest.raises(ValidationError):
        GriffinLimOptions(iterations=-1)
    with pytest.raises(ValidationError):
        GriffinLimOptions(init="sideways")
    with pytest.raises(ValidationError):
        GriffinLimOptions(gate_db=10)
    for name, field in GriffinLimOptions.model_fields.items():
        assert field.description, name


def test_float64_magnitudes_stay_float64(kick_case) -> None:
    magnitude, spec = kick_case
    assert griffin_lim(magnitude.double(), spec, 2).dtype == torch.float64


def test_thread_count_does_not_change_the_result(kick_case) -> None:
    magnitude, spec = kick_case
    batch = magnitude.repeat(3, 1, 1, 1)  # 6 items: several chunks, run in parallel
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = griffin_lim(batch, spec, 3)
        torch.set_num_threads(2)
        parallel = griffin_lim(batch, spec, 3)
        assert torch.get_num_threads() == 2  # restored after the parallel run
    finally:
        torch.set_num_threads(previous)
    torch.testing.assert_close(parallel, single, atol=1e-5, rtol=1e-4)
