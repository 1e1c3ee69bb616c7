"""The example third-party plugin package: installs on its own, is found, and its parts work.

The package is installed into a throw-away virtual environment that sees the packages
of the interpreter running the tests (so the editable ssgan, torch, wheel, ... are shared
and nothing is downloaded); the test then drives that environment's ``ssgan`` command.
That works inside a virtualenv too (the usual way to run the suite), where
``--system-site-packages`` alone would reach the *base* interpreter's packages only.
"""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

import ssgan_core
from ssgan_core import AudioSpec, LossContext

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "ssgan-example-plugin"
PACKAGE = EXAMPLE / "ssgan_example_plugin"
SSGAN = "from ssgan_cli.main import app; app()"
"""The ``ssgan`` console script's body, run with the venv's interpreter."""
PUBLIC_MODULES = {"ssgan_core", "ssgan_core.hookspecs", "ssgan_core.config"}


def _run(python: Path, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "SSGAN_PLUGINS"}}
    env.update(OMP_NUM_THREADS="1", SSGAN_STRICT_PLUGINS="")
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the example installed (built from a copy, so the repo stays clean)."""
    root = tmp_path_factory.mktemp("example-venv")
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / "venv")],
        check=True,
        timeout=60,
    )
    python = root / "venv" / "bin" / "python"
    _share_running_environment(python)
    source = shutil.copytree(EXAMPLE, root / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    # The system pip, run by the venv's interpreter, installs into the venv.
    done = _run(
        python,
        *("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(source)),
        cwd=root,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return python


def _share_running_environment(python: Path) -> None:
    """Make a venv made from inside another venv see that venv's packages, not only the base's.

    ``python -m venv --system-site-packages`` links to ``sys.base_prefix``; when the tests
    run in a venv, its editable ssgan and build tools live elsewhere. A ``.pth`` file in
    the new venv adds them with ``site.addsitedir`` (so their own ``.pth`` files, such as
    the editable-install finder, run too), ahead of the base interpreter's packages.
    """
    if sys.prefix == sys.base_prefix:
        return  # not in a venv: the system site-packages are this interpreter's
    paths = sysconfig.get_paths()
    mine = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    target = Path(
        subprocess.run([str(python), "-c", query], check=True, capture_output=True, text=True).stdout.strip()
    )
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in mine)
    (target / "_ssgan_tests_running_env.pth").write_text(lines)


def test_venv_sees_the_editable_ssgan_and_isolates_the_example(venv_python: Path, tmp_path: Path):
    probe = (
        "import json, importlib.metadata as md, ssgan_core, ssgan_example_plugin as ex;"
        "print(json.dumps([ssgan_core.__file__, ex.__file__, md.version('ssgan-example-plugin')]))"
    )
    done = _run(venv_python, "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    core_file, example_file, version = json.loads(done.stdout)
    assert Path(core_file).resolve() == Path(ssgan_core.__file__).resolve(), "venv must use this checkout"
    assert Path(venv_python).parents[1] in Path(example_file).resolve().parents
    assert version == "0.1.0"


def test_list_plugins_shows_the_example_with_its_version(venv_python: Path, tmp_path: Path):
    done = _run(venv_python, "-c", SSGAN, "list-plugins", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    mine = {(p["kind"], p["name"]): p for p in listing["parts"] if p["package"] == "ssgan-example-plugin"}
    assert set(mine) == {("generator", "example-upsample-generator"), ("loss", "example-stereo-balance")}
    assert {p["version"] for p in mine.values()} == {"0.1.0"}
    presets = {p["name"]: p["package"] for p in listing["presets"]}
    assert presets.get("example-tiny") == "ssgan-example-plugin"
    assert not [f for f in listing["failed"] if f["package"] == "ssgan-example-plugin"]


def test_example_imports_only_public_names():
    public_names = set(ssgan_core.__all__)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ssgan"):
                module = node.module
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("ssgan")]
                assert all(n.startswith("ssgan_example_plugin") for n in names), f"{path}: {names}"
                continue
            else:
                continue
            if module.startswith("ssgan_example_plugin"):
                continue
            assert module in PUBLIC_MODULES, f"{path.name} imports from {module}"
            if module == "ssgan_core":
                imported = {a.name for a in node.names}
                assert imported <= public_names, f"{path.name}: {imported - public_names} not public"


@pytest.fixture
def example_parts(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from ssgan_example_plugin import generator, loss

    return generator, loss


def test_upsample_generator_shape_range_and_gradients(example_parts):
    generator, _ = example_parts
    gen = generator.build_upsample_generator(
        generator.UpsampleGeneratorOptions(latent_dim=16, width=16), AudioSpec()
    )
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in gen.modules())
    z = gen.sample_latent(2, generator=torch.Generator().manual_seed(0))
    image = gen(z)
    assert z.shape == (2, 16, 1, 1)
    assert image.shape == (2, 2, 256, 256)
    assert image.abs().max() <= 1
    image.mean().backward()
    assert all(p.grad is not None for p in gen.parameters())


def test_stereo_balance_is_zero_for_matching_stats_and_grows_with_mismatch(example_parts):
    _, loss = example_parts
    term = loss.build_stereo_balance(loss.StereoBalanceOptions(weight=0.5, bands=8), AudioSpec())
    assert term.weight == 0.5
    base = torch.rand(4, 1, 256, 256) * 2 - 1
    real = torch.cat([base, base - 0.1], dim=1)  # right channel a little quieter
    critic = torch.nn.Identity()

    def value(fake: torch.Tensor) -> float:
        ctx = LossContext(real=real, fake=fake, critic=critic)  # type: ignore[arg-type]
        assert term.critic_loss(ctx) is None
        return float(term.generator_loss(ctx))

    assert value(real.flip(0)) == pytest.approx(0.0, abs=1e-10)  # same batch statistics
    centred = value(torch.cat([base, base], dim=1))
    swapped = value(torch.cat([base - 0.1, base], dim=1))
    assert 0 < centred < swapped
    fake = torch.cat([base, base], dim=1).requires_grad_()
    term.generator_loss(LossContext(real=real, fake=fake, critic=critic)).backward()  # type: ignore[arg-type, union-attr]
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_short_training_run_uses_the_example_parts(venv_python: Path, tmp_path: Path):
    run = tmp_path / "run"
    args = ("train", "--preset", "example-tiny", "--run-dir", str(run), "--device", "cpu")
    done = _run(venv_python, "-c", SSGAN, *args, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["generator"]["name"] == "example-upsample-generator"
    assert config["losses"]["example-stereo-balance"] == {"weight": 1.0, "bands": 16}
    epoch = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    balance = epoch["generator/example-stereo-balance"]
    assert math.isfinite(balance) and balance >= 0
    assert (run / "checkpoints" / "last.ckpt").is_file()
