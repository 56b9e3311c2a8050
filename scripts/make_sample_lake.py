"""Generate the sample data lake: see yololake.samples.lake (e.g. --out demo/lake)."""
import sys

from yololake.samples.lake import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
