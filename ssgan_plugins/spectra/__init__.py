"""Transforms beyond the paper's: ``mel`` (mel bands) and ``mag-if`` (GANSynth's magnitude +
instantaneous frequency, whose decode carries phase)."""
