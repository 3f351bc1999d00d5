"""``python -m daqwire.codegen``: the same as ``daqwire generate``."""

import sys

from daqwire.codegen.cli import main

sys.exit(main())
