"""An example ssgan plugin package, written only against ssgan's public API."""

from ssgan_example_plugin.generator import UpsampleGenerator, UpsampleGeneratorOptions
from ssgan_example_plugin.loss import StereoBalanceLoss, StereoBalanceOptions

__all__ = ["StereoBalanceLoss", "StereoBalanceOptions", "UpsampleGenerator", "UpsampleGeneratorOptions"]
