"""``python -m agentkit.cli``: the same as the ``agentkit`` command."""

import sys

from ._main import main

sys.exit(main())
