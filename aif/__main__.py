"""``python -m aif``: the ``aif`` command (see ``aif.cli``)."""

import sys

from .cli import main

sys.exit(main())
