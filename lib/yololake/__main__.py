"""`python -m yololake ...` is the `yololake` console script."""
import sys

from yololake.cli import main

sys.exit(main())
