"""`python -m faturamento_batch …` is the `faturamento-batch` command (works without the script on PATH)."""

import sys

from .cli import main

sys.exit(main())
