"""``python -m trice``: the ``trice`` command, for an environment whose scripts are not on PATH."""

import sys

from trice.cli import main

sys.exit(main())
