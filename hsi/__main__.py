"""``python -m hsi``: the ``hsi`` command (and what ``torchrun -m hsi`` launches)."""
import sys

from .cli import main

sys.exit(main())
