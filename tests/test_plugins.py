"""The plugin mechanism: entry points, failure isolation, strict mode, filtering, registries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from ssgan_core import Generator, SsganError, hookimpl
from ssgan_core.interfaces import AudioSpec
from ssgan_core.plugins import PluginHost, PluginInfo, PluginLoadError, get_host
from ssgan_core.registry import UnknownPartError

GOOD_PLUGIN = '''
import torch
from pydantic import BaseModel
from ssgan_core import Generator, hookimpl


class Options(BaseModel):
    latent_dim: int = 8


class TinyGenerator(Generator):
    """A throwaway generator: a single linear map to the image."""

    def __init__(self, options, audio):
        super().__init__()
        self.latent_dim = options.latent_dim
        self.proj = torch.nn.Linear(options.latent_dim, 2 * 256 * 256)

    def forward(self, z):
        return torch.tanh(self.proj(z.flatten(1))).view(-1, 2, 256, 256)


@hookimpl
def register_generators(register):
    register("throwaway-gen", TinyGenerator, options=Options, description="From an installed package.")


@hookimpl
def register_presets(register):
    register("throwaway-preset", {"generator": {"name": "throwaway-gen", "latent_dim": 4}}, "Tiny.")
'''

BAD_PLUGIN = """
raise RuntimeError("this plugin is broken on purpose")
"""


def _make_package(root: Path, dist: str, module: str, source: str) -> Path:
    pkg = root / dist
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(textwrap.dedent(source))
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "1.2.3"

            [project.entry-points.ssgan]
            {module} = "{module}"

            [tool.setuptools]
            packages = ["{module}"]
            """
        )
    )
    return pkg


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory) -> Path:
    """Build and install two throwaway plugin packages into a private target folder."""
    root = tmp_path_factory.mktemp("plugins")
    target = root / "site"
    for dist, module, source in [
        ("ssgan-throwaway", "ssgan_throwaway", GOOD_PLUGIN),
        ("ssgan-broken", "ssgan_broken", BAD_PLUGIN),
    ]:
        pkg = _make_package(root, dist, module, source)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(target),
                str(pkg),
            ],
            check=True,
            capture_output=True,
        )
    return target


def _ssgan(target: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SSGAN_")}
    full_env = {**inherited, "PYTHONPATH": str(target), **env}
    code = "from ssgan_cli.main import app; app()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_installed_package_registers_through_entry_point(installed_plugins):
    out = _ssgan(installed_plugins, "list-plugins", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    gen = [p for p in data["parts"] if p["name"] == "throwaway-gen"]
    assert gen == [
        {
            "kind": "generator",
            "name": "throwaway-gen",
            "package": "ssgan-throwaway",
            "version": "1.2.3",
            "description": "From an installed package.",
        }
    ]
    assert any(p["name"] == "throwaway-preset" for p in data["presets"])


def test_broken_plugin_is_listed_and_others_still_work(installed_plugins):
    out = _ssgan(installed_plugins, "list-plugins", "--json")
    data = json.loads(out.stdout)
    (failure,) = [f for f in data["failed"] if f["package"] == "ssgan-broken"]
    assert failure["stage"] == "import"
    assert "broken on purpose" in failure["error"]
    assert failure["version"] == "1.2.3"
    kinds = {p["kind"] for p in data["parts"]}
    assert {"generator"} <= kinds
    # a config using the good plugin still resolves
    show = _ssgan(installed_plugins, "config", "show", "--preset", "throwaway-preset", "--json")
    assert show.returncode == 0, show.stderr
    assert json.loads(show.stdout)["generator"] == {"name": "throwaway-gen", "latent_dim": 4}


def test_strict_mode_turns_failure_into_error(installed_plugins):
    out = _ssgan(installed_plugins, "list-plugins", SSGAN_STRICT_PLUGINS="1")
    assert out.returncode != 0
    assert "ssgan_broken" in out.stderr and "broken on purpose" in out.stderr
    assert "Traceback" not in out.stderr
    flag = _ssgan(installed_plugins, "list-plugins", "--strict")
    assert flag.returncode != 0


def test_allow_list_restricts_external_plugins(installed_plugins):
    out = _ssgan(installed_plugins, "list-plugins", "--json", SSGAN_PLUGINS="ssgan-throwaway")
    data = json.loads(out.stdout)
    assert not [f for f in data["failed"] if f["package"] == "ssgan-broken"]
    assert any(p["name"] == "throwaway-gen" for p in data["parts"])
    none = json.loads(_ssgan(installed_plugins, "list-plugins", "--json", SSGAN_PLUGINS="").stdout)
    assert not any(p["package"] in {"ssgan-throwaway", "ssgan-broken"} for p in none["parts"])
    assert not none["failed"]


class _Opts(BaseModel):
    size: int = 3


class _Gen(Generator):
    latent_dim = 1

    def __init__(self, options, audio):
        super().__init__()

    def forward(self, z):
        return z


class _Plugin:
    @hookimpl
    def register_generators(self, register):
        register("alpha-gen", _Gen, options=_Opts, description="first")
        register("alphabet-gen", _Gen)


class _RaisingPlugin:
    @hookimpl
    def register_generators(self, register):
        raise ValueError("cannot register")


def _host(*plugins: object, strict: bool = False) -> PluginHost:
    host = PluginHost(strict=strict)
    for i, plugin in enumerate(plugins):
        host.add_plugin(plugin, PluginInfo(f"p{i}", f"pkg{i}", "0.1"))
    return host


def test_unknown_name_suggests_close_names_and_lists_choices():
    host = _host(_Plugin())
    with pytest.raises(UnknownPartError) as info:
        host.registry("generator").get("alpah-gen")
    msg = str(info.value)
    assert "Unknown generator 'alpah-gen'" in msg
    assert "Did you mean 'alpha-gen'" in msg
    assert "alphabet-gen" in msg  # installed choices listed
    assert isinstance(info.value, SsganError)


def test_registry_create_validates_options_and_kind():
    host = _host(_Plugin())
    reg = host.registry("generator")
    gen = reg.create("alpha-gen", {"size": 5}, AudioSpec())
    assert isinstance(gen, _Gen)
    with pytest.raises(Exception, match="size"):
        reg.create("alpha-gen", {"size": "big"}, AudioSpec())
    assert reg.names("alpha*") == ["alpha-gen", "alphabet-gen"]
    assert reg.get("alpha-gen").description == "first"
    assert reg.get("alpha-gen").package == "pkg0"


def test_registration_failure_is_isolated_and_strict_raises():
    host = _host(_RaisingPlugin(), _Plugin())
    assert [f.plugin.name for f in host.failures] == ["p0"]
    assert host.failures[0].stage == "register_generators"
    assert "alpha-gen" in host.registry("generator")
    with pytest.raises(PluginLoadError, match="cannot register"):
        _host(_RaisingPlugin(), strict=True)


def test_factory_returning_wrong_kind_is_reported():
    class Wrong:
        @hookimpl
        def register_generators(self, register):
            register("not-a-generator", lambda options, audio: object())

    host = _host(Wrong())
    with pytest.raises(SsganError, match=r"not a ssgan_core\.interfaces\.Generator"):
        host.registry("generator").create("not-a-generator", {}, AudioSpec())


def test_duplicate_name_from_two_packages_is_an_error():
    host = _host(_Plugin())
    host.add_plugin(type("Again", (_Plugin,), {})(), PluginInfo("again", "other-pkg", "1"))
    assert any("registered twice" in f.error for f in host.failures)


def test_default_plugins_come_from_the_installed_entry_points():
    host = get_host()
    own = {p.package for p in host.loaded}
    assert own == {"ssgan"} or "ssgan" in own
    assert {"paper-kicks", "paper-diverse-kicks", "paper-instruments"} <= set(host.presets)
