"""`python -m smartseg` runs the CLI."""

from __future__ import annotations

import sys

from smartseg.worker.cli import main

sys.exit(main())
