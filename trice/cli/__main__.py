"""``python -m trice.cli``: what `accelerate launch` and `torchrun` run, the ``trice`` command."""

import sys

from trice.cli import main

sys.exit(main())
