"""The ``ssgan`` command-line interface (import package ``ssgan_cli``)."""

import os

OPENMP_SPIN = "1000"
"""``GOMP_SPINCOUNT`` set before torch loads OpenMP (libgomp), unless the user set it or
``OMP_WAIT_POLICY``. libgomp's workers spin ~300k iterations waiting for work, which
stalls torch several-fold when other processes share the cores. Measured with
``benchmarks/bench_busy.py`` (paper training step, 2 cores, docs/benchmarks.md): 1,000
keeps the idle speed (52.7 vs 53.3 samples/s for 30,000) and keeps 47-52% of it beside
neighbours that fill both cores, where 30,000 kept 13-14% and libgomp's default 5-16%."""

if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN)
