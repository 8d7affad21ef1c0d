import sys

from include.xcom_backends.ops.cli import main

sys.exit(main())
