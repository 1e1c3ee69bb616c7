"""The ``ssgan`` command-line interface (import package ``ssgan_cli``)."""

import os

# Set before torch loads OpenMP: spinning OpenMP workers stall torch several-fold when other
# processes share the cores (measured 1.3-3.3 vs 14-22 samples/s training on 2 busy cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
