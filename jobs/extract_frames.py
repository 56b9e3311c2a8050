"""spark-submit entry point: see yololake.video.main."""
import sys

from yololake.video.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
