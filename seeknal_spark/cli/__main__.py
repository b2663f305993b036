"""``python -m seeknal_spark.cli ...``: the ``seeknal-spark`` command."""

import sys

from seeknal_spark.cli.main import main

sys.exit(main())
