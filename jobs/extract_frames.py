"""spark-submit entry point: see yololake.extract_frames."""
import sys

from yololake.extract_frames import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
