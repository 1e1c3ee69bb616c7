"""The docs stay true: the config reference is current and the plugin example runs."""

from __future__ import annotations

import re
import types

import torch

from ssgan_core import AudioSpec, LossContext
from ssgan_core.config import resolve_config
from ssgan_core.config_docs import render_config_docs
from ssgan_core.plugins import PluginHost, PluginInfo, get_host

from .conftest import REPO


def test_config_reference_is_current():
    current = (REPO / "docs" / "config.md").read_text()
    assert current == render_config_docs(get_host()), "run: ssgan config docs > docs/config.md"
    # A list's per-item bounds (list[Annotated[float, Field(gt=0, le=10)]]) are spelled out.
    assert "| `inverter.ratio_scales` | list[float], each > 0.0, ≤ 10.0 |" in current


def _plugin_example() -> types.ModuleType:
    text = (REPO / "docs" / "plugins.md").read_text()
    section = text.split("## 4. A complete example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("ssgan_myorg_plugin")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    return module


def test_plugin_example_from_docs_registers_and_runs():
    module = _plugin_example()
    host = PluginHost(strict=True)
    for plugin in get_host().loaded:  # the built-in parts, for the preset's defaults
        host.add_plugin(get_host().manager.get_plugin(plugin.name), plugin)
    host.add_plugin(module, PluginInfo("myorg", "ssgan-myorg", "0.1.0"))
    gen = host.registry("generator").create("myorg-upsample", {"width": 8}, AudioSpec())
    fake = gen(gen.sample_latent(2))
    assert fake.shape == (2, 2, 256, 256) and fake.abs().max() <= 1
    cfg = resolve_config("myorg-kicks", host=host)
    assert cfg.generator.name == "myorg-upsample" and cfg.losses["myorg-loudness"]["weight"] == 0.5
    term = host.registry("loss").create("myorg-loudness", {"weight": 0.5}, AudioSpec())
    assert term.weight == 0.5
    critic = host.registry("critic").create("paper-critic", {}, AudioSpec())
    value = term.generator_loss(LossContext(real=torch.zeros_like(fake), fake=fake, critic=critic))
    assert value.ndim == 0 and torch.isfinite(value)
