"""spark-submit entry point: see yololake.build.main."""
import sys

from yololake.build.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
