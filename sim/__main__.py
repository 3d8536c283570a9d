"""`python -m sim <scenario> ...` (what `flotta sim ...` runs)."""

import sys

from sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
