"""``python -m benchmarks`` — see `benchmarks.harness` and BENCHMARKS.md."""

import sys

from .harness import main

sys.exit(main())
