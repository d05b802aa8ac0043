"""Benchmarks of faturamento_batch against the old job, dlt and the physical floor.

Not part of the test suite: run with ``python -m benchmarks`` (see BENCHMARKS.md).

Layout:
    harness   the runner: prepares inputs, runs every contender in its own
              subprocess on a fresh database, aggregates and prints the table
    prepare   datasets (generated), transformed Parquet inputs, template databases
    worker    the subprocess side: load the input, reset the peak RSS, time one run
    ours      faturamento_batch itself (DB-side from in-memory Odoo frames; end-to-end over JSON-RPC)
    old_job   the old row-by-row ORM job re-implemented as DESIGN §1 describes it
    dlt_merge the same rows loaded by dlt, write_disposition="merge"
    floor     the physical floor: one adbc_ingest (+ the targeted key read), one commit
    pg        small admin helpers for the embedded server (create/clone/drop databases)
    frames    raw Odoo frames on disk, an in-memory `Source`, Arrow for ADBC
    report    the machine description and the markdown report
"""
