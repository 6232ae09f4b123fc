"""`python -m rljax ...`: see `rljax.run.cli`."""

import sys

from rljax.run.cli import main

sys.exit(main())
