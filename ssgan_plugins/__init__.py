"""The built-in parts of ssgan, registered through the public ``ssgan`` entry points.

``paper``: the StereoSampleGAN configuration. ``logfreq``: the log-frequency
transform the paper proposes as future work. ``data``: built-in dataset sources.
"""
