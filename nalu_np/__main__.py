"""``python -m nalu_np``: the ``nalu-np`` command."""

import sys

from .cli import main

sys.exit(main())
