"""``python -m tamer.cli``: the same as the ``tamer`` command."""

import sys

from tamer.cli import main

sys.exit(main())
