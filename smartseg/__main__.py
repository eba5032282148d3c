"""`python -m smartseg` runs the CLI, through the entry point the `smartseg` command uses."""

from __future__ import annotations

import sys

from smartseg.entry import main

sys.exit(main())
