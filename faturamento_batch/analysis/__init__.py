"""The notebook's backend: a run's artifacts loaded, shaped into small frames, and charted.

    loading   find runs (`resolve_run_dir`, `run_dirs`) and load one (`load_run` → `Run`)
    shaping   `Run` → small frames per section of the notebook (inserts, status, drift, …)
    stock     `Run` → small frames for the stock stage (lots, NFs without a lot, justifications)
    events    `Run` → the downstream events: by kind, per run, consumers' lag
    charts    `show` and `bar` for the notebook

`from faturamento_batch import analysis as an` gives all of them, as the notebook uses it.
"""

from .charts import (
    bar,
    show,
)
from .events import (
    consumer_lag,
    events_by_kind,
    events_per_run,
)
from .loading import (
    CASCADE_COLUMNS,
    CASCADE_SCHEMA,
    CHANGESET_PARTS,
    COMPARE_ENV,
    DELTA_COLUMNS,
    PART_SCHEMAS,
    RUN_ENV,
    Run,
    SEARCH_ROOTS,
    STOCK_PART_SCHEMAS,
    STOCK_PARTS,
    load_run,
    resolve_compare_dir,
    resolve_run_dir,
    run_dirs,
)
from .shaping import (
    cancellation_cascade,
    cascade_totals,
    compare_counts,
    compare_timings,
    drift_deltas,
    drift_fields,
    drift_totals,
    inserts_by_day,
    inserts_by_uf,
    new_products,
    nfs_to_reprocess,
    overview,
    part_counts,
    phase_timings,
    reactivated_nfs,
    rejected_by_reason,
    rejected_examples,
    status_transitions,
    top_customers,
    top_drift_nfs,
    top_products,
)
from .stock import (
    OUTCOMES,
    divergences_by_product,
    inconsistency_actions,
    justification_rows,
    lot_outcomes,
    nfs_without_lot,
    stock_left_alone,
    stock_totals,
)

__all__ = [
    "CASCADE_COLUMNS",
    "CASCADE_SCHEMA",
    "CHANGESET_PARTS",
    "COMPARE_ENV",
    "DELTA_COLUMNS",
    "OUTCOMES",
    "PART_SCHEMAS",
    "RUN_ENV",
    "Run",
    "SEARCH_ROOTS",
    "STOCK_PARTS",
    "STOCK_PART_SCHEMAS",
    "bar",
    "cancellation_cascade",
    "cascade_totals",
    "compare_counts",
    "compare_timings",
    "consumer_lag",
    "divergences_by_product",
    "drift_deltas",
    "drift_fields",
    "drift_totals",
    "events_by_kind",
    "events_per_run",
    "inconsistency_actions",
    "inserts_by_day",
    "inserts_by_uf",
    "justification_rows",
    "load_run",
    "lot_outcomes",
    "new_products",
    "nfs_to_reprocess",
    "nfs_without_lot",
    "overview",
    "part_counts",
    "phase_timings",
    "reactivated_nfs",
    "rejected_by_reason",
    "rejected_examples",
    "resolve_compare_dir",
    "resolve_run_dir",
    "run_dirs",
    "show",
    "status_transitions",
    "stock_left_alone",
    "stock_totals",
    "top_customers",
    "top_drift_nfs",
    "top_products",
]
