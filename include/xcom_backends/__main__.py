"""``python -m include.xcom_backends doctor|gc``: the operator's command line, in ``ops/``."""

import sys

from include.xcom_backends.ops.cli import main

sys.exit(main())
