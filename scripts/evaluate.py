"""Same as `hsi evaluate ...`: a thin wrapper over hsi.cli for users who run scripts directly."""
import sys

from hsi.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
