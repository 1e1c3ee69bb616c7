"""Importing the original StereoSampleGAN generator weights: strict, layout-correct, usable."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from ssgan_cli.main import app
from ssgan_core import CheckpointError
from ssgan_core.checkpoint import load_checkpoint
from ssgan_core.generation import generate_images, load_generation_model
from ssgan_plugins.paper.generator import PaperGenerator
from ssgan_plugins.paper.original import (
    convert_original_generator,
    import_original_checkpoint,
    load_original_generator,
    read_original,
)

from .conftest import SHARED

PRETRAINED = SHARED / "reference" / "pretrained"
NAMES = ("CuratedKick", "DiverseKick", "InstrumentOneShot")
runner = CliRunner()


def original_file(name: str):
    path = PRETRAINED / f"StereoSampleGAN-{name}.pth"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def fake_original(tmp_path, seed: int = 0):
    """A state dict shaped like an original file (random weights), saved as .pth."""
    torch.manual_seed(seed)
    state = PaperGenerator().state_dict()
    path = tmp_path / "original.pth"
    torch.save(state, path)
    return path, state


def original_layout_output(state, z):
    """What the original model computes: our module structure is identical, its images are (time, freq)."""
    model = PaperGenerator()
    model.load_state_dict(state)
    with torch.no_grad():
        return model.eval()(z)


def level(images):
    """Mean level in [0, 1] over batch and channels: ``(freq, time)``."""
    return ((images + 1) / 2).mean(dim=(0, 1))


# --------------------------------------------------------------------------- the real files


@pytest.mark.parametrize("name", NAMES)
def test_original_files_import_strictly_and_transpose_the_output(name):
    path = original_file(name)
    state = read_original(path)
    z = torch.randn(4, 128, 1, 1, generator=torch.Generator().manual_seed(1))
    ours = load_original_generator(path)
    with torch.no_grad():
        image = ours(z)
    assert image.shape == (4, 2, 256, 256)
    torch.testing.assert_close(image, original_layout_output(state, z).transpose(-2, -1))


@pytest.mark.parametrize("name", ["CuratedKick", "DiverseKick"])
def test_imported_kick_models_draw_kicks_in_our_layout(name):
    """Low rows (low frequencies) carry the energy and it decays over time (columns)."""
    generator = load_original_generator(original_file(name))
    with torch.no_grad():
        m = level(generator(torch.randn(16, 128, 1, 1, generator=torch.Generator().manual_seed(0))))
    low_rows, high_rows = m[:8], m[128:]
    assert low_rows.mean() > 5 * high_rows.mean()
    assert low_rows[:, :32].mean() > 2.5 * low_rows[:, 192:].mean()  # the low band decays over time
    # Orientation: the body's low rows stay loud for many frames, while the click at the start
    # spans fewer frequency rows; a transposed image would swap the two extents.
    body_frames = (m[:4].mean(dim=0) > 0.3).sum()
    click_rows = (m[:, :4].mean(dim=1) > 0.3).sum()
    assert body_frames > 1.6 * click_rows


def test_imported_instrument_model_sustains_over_time():
    generator = load_original_generator(original_file("InstrumentOneShot"))
    with torch.no_grad():
        m = level(generator(torch.randn(16, 128, 1, 1, generator=torch.Generator().manual_seed(0))))
    freq_profile, time_profile = m.mean(dim=1), m.mean(dim=0)
    assert freq_profile[:16].mean() > 2 * freq_profile[128:].mean()  # low frequencies dominate
    assert time_profile[128:].mean() > 0.7 * time_profile[:128].mean()  # notes sustain


# --------------------------------------------------------------------------- strictness


def test_conversion_lists_missing_unexpected_and_mismatched_keys():
    state = PaperGenerator().state_dict()
    del state["deconv_blocks.5.running_var"]
    state["deconv_blocks.3.weight"] = torch.zeros(3)
    state["deconv_blocks.4.weight"] = torch.zeros(128, 64, 3, 3)
    with pytest.raises(CheckpointError) as info:
        convert_original_generator(state, source="x.pth")
    message = str(info.value)
    assert message.startswith("x.pth does not match the paper generator")
    assert "missing: deconv_blocks.5.running_var" in message
    assert "unexpected: deconv_blocks.3.weight" in message
    assert "wrong shape: deconv_blocks.4.weight (128, 64, 3, 3) (expected (128, 64, 4, 4))" in message


def test_conversion_transposes_only_the_kernels():
    state = PaperGenerator().state_dict()
    converted = convert_original_generator(state)
    for key, value in state.items():
        if key.endswith(".weight") and value.dim() == 4:
            assert torch.equal(converted[key], value.transpose(-2, -1))
        else:
            assert torch.equal(converted[key], value)


def test_unreadable_files_are_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        read_original(corrupt)
    with pytest.raises(CheckpointError, match="no such file"):
        read_original(tmp_path / "missing.pth")
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), pickled)
    with pytest.raises(CheckpointError, match="refused"):
        read_original(pickled)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(CheckpointError, match="plain state dict"):
        read_original(listed)


# --------------------------------------------------------------------------- checkpoint and CLI


def test_import_writes_a_generator_only_checkpoint_that_generates(tmp_path):
    source, state = fake_original(tmp_path)
    out = import_original_checkpoint(source, tmp_path / "imported.ckpt", preset="paper-kicks")
    payload = load_checkpoint(out)
    assert payload["critic"] is None and payload["config"]["preset"] == "paper-kicks"
    model = load_generation_model(out, device="cpu")
    images = generate_images(model, 2, seed=3)
    z = model.generator.sample_latent(2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(images, original_layout_output(state, z).transpose(-2, -1))


def test_cli_import_then_generate(tmp_path):
    source, _ = fake_original(tmp_path)
    ckpt = tmp_path / "kick.ckpt"
    result = runner.invoke(app, ["import-checkpoint", str(source), "-o", str(ckpt)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["generate", str(ckpt), "-n", "1", "-o", str(tmp_path / "wavs")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "wavs").glob("*.wav"))) == 1


def test_cli_errors_are_one_line(tmp_path):
    source, _ = fake_original(tmp_path)
    existing = tmp_path / "exists.ckpt"
    existing.write_bytes(b"")
    result = runner.invoke(app, ["import-checkpoint", str(source), "-o", str(existing)])
    assert result.exit_code == 2 and "--force" in result.output
    result = runner.invoke(app, ["import-checkpoint", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "a")])
    assert result.exit_code == 2 and "no such file" in result.output
    assert "Traceback" not in result.output
