"""``python3 -m edgeagent`` and ``python3 edgeagent.pyz``."""

import sys

from edgeagent.cli import main

sys.exit(main())
