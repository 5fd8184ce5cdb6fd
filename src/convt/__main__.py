"""``python -m convt``: see :mod:`convt.cli`."""

import sys

from convt.cli import main

sys.exit(main())
