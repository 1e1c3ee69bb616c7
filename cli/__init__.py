"""The ``ssgan`` command-line interface (import package ``ssgan_cli``)."""

import os

# Before torch loads OpenMP (libgomp): its workers spin ~300k iterations waiting for work,
# which stalls torch several-fold when other processes share the cores. A shorter spin
# keeps full speed on idle cores (measured on 2 cores: 63 vs 64 samples/s training) and
# avoids the stall when they are busy (26 vs 2-8 samples/s). Explicit user settings win.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "30000")
