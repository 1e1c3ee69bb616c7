"""Commands that need no torch start without importing it (``ssgan --version`` took 2.6 s with it).

Plugins register factories by path and torch-free options models, so listing parts,
showing a resolved config and rendering the config reference import no torch either.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from ssgan_core.interfaces import PART_KINDS, AudioSpec, Inverter
from ssgan_core.plugins import KINDS, PluginHost, PluginInfo, registry

HEAVY = ("torch", "scipy", "numba", "librosa")


def loaded_after(argv: list[str]) -> tuple[str, list[str]]:
    """Run the CLI with ``argv`` in a fresh interpreter; its output and which heavy modules it imported."""
    code = (
        "import sys\n"
        "from ssgan_cli.main import app\n"
        "try:\n"
        f"    app({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    head, _, loaded = out.rpartition("LOADED ")
    return head, ast.literal_eval(loaded)


def test_version_and_help_do_not_import_torch() -> None:
    for argv, expected in (
        (["--version"], "ssgan "),
        (["--help"], "invert"),
        (["invert", "--help"], "folder"),
    ):
        output, loaded = loaded_after(argv)
        assert expected in output, (argv, output)
        assert loaded == [], (argv, loaded)


def test_lazy_core_exports_still_resolve() -> None:
    import ssgan_core

    assert ssgan_core.StftSpec.__name__ == "StftSpec" and ssgan_core.PAPER_IMAGE_SHAPE == (2, 256, 256)
    with pytest.warns(DeprecationWarning, match="context.image"):  # old plugins keep importing
        assert (ssgan_core.IMAGE_SIZE, ssgan_core.CHANNELS) == (256, 2)
    assert list(KINDS) == list(PART_KINDS)


def test_config_and_plugin_listing_do_not_import_torch() -> None:
    for argv, expected in (
        (["config", "show", "--json"], '"pghi"'),  # the recommended preset's inverter, validated
        (["config", "show", "--preset", "paper-kicks", "--set", "inverter.iterations=12"], "griffin-lim"),
        (["config", "docs"], "inverter.channel_phase"),
        (["config", "presets"], "paper-kicks"),
        (["list-plugins"], "synthetic-kicks"),
    ):
        output, loaded = loaded_after(argv)
        assert expected in output, (argv, output[-500:])
        assert loaded == [], (argv, loaded)


def test_parts_registered_by_path_still_build() -> None:
    """A path-registered factory is imported on the first build; a bad path fails at registration."""
    assert isinstance(registry("inverter").get("pghi").factory, str)
    assert isinstance(registry("inverter").create("pghi", {"iterations": 1}, AudioSpec()), Inverter)
    host = PluginHost(strict=True)
    register = host._register_callback("register_inverters", PluginInfo("t", "t", "0"))
    with pytest.raises(TypeError, match="module:function"):
        register("bad", "not a path")


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "1000"), ({"GOMP_SPINCOUNT": "7"}, "7"), ({"OMP_WAIT_POLICY": "PASSIVE"}, "unset")],
)
def test_cli_sets_a_short_openmp_spin_unless_the_user_chose(env: dict[str, str], expected: str) -> None:
    """A short spin keeps training fast beside other jobs (bench_busy.py); user settings win."""
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = "import os, ssgan_cli; print(os.environ.get('GOMP_SPINCOUNT', 'unset'))"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected
