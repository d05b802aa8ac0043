"""faturamento_batch: Odoo invoice lines → the logistics application's PostgreSQL (DESIGN.md)."""

import os

# Polars allocates through its own jemalloc, which keeps freed pages for 10 s by default: a
# run frees and allocates run-sized frames stage after stage, and the pages it no longer needs
# count in its peak resident memory. Returned after 1 s (dirty) and at once (muzzy), a 1M-line
# first run peaked at 781 MB instead of 883 MB, in the same time (BENCHMARKS.md). Read once, when
# Polars loads: set before any import of it; a value the user set wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:1000,muzzy_decay_ms:0")
