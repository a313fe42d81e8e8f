"""``python -m protonb serve DIR``."""

import sys

from .cli import main

sys.exit(main())
