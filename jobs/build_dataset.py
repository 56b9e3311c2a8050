"""spark-submit entry point: see yololake.build_dataset."""
import sys

from yololake.build_dataset import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
