"""Generate the sample data lake: see yololake.sample_lake (e.g. --out demo/lake)."""
import sys

from yololake.sample_lake import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
