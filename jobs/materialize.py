"""spark-submit entry point: `seeknal-spark materialize` (arguments are forwarded unchanged).

    ./spark-submit.sh materialize [args...]
    spark-submit --py-files build/seeknal_spark.zip jobs/materialize.py [args...]   # the same, by hand
"""

from __future__ import annotations

import sys

from seeknal_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["materialize", *sys.argv[1:]]))
