"""`python -m rljax ...`: see `rljax.cli`."""

import sys

from rljax.cli import main

sys.exit(main())
