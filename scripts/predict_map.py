"""Same as `hsi predict ...`: a thin wrapper over hsi.cli for users who run scripts directly."""
import sys

from hsi.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
