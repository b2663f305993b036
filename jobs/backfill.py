"""spark-submit entry point: `seeknal-spark backfill` (arguments are forwarded unchanged).

    ./spark-submit.sh backfill [args...]
    spark-submit --py-files build/seeknal_spark.zip jobs/backfill.py [args...]   # the same, by hand
"""

from __future__ import annotations

import sys

from seeknal_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["backfill", *sys.argv[1:]]))
