"""The dataset generator: deterministic, realistic Odoo datasets (DESIGN §3 format).

Used by tests, benchmarks and the demo; no run needs it.

    dataset         `generate_dataset`, `generate_next_day` (the public entry points)
    entities        users, municipalities, customers, products; the shares every draw uses
    moves           moves (NFs) and their lines, column-wise
    json_text       JSON record text built as Polars string columns
    reference_data  real places and plausible names
"""

from .dataset import GenerateSummary, generate_dataset, generate_next_day

__all__ = ["GenerateSummary", "generate_dataset", "generate_next_day"]
