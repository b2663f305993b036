"""spark-submit entry point: `seeknal-spark training-set` (arguments are forwarded unchanged).

    ./spark-submit.sh training_set [args...]
    spark-submit --py-files build/seeknal_spark.zip jobs/training_set.py [args...]   # the same, by hand
"""

from __future__ import annotations

import sys

from seeknal_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["training-set", *sys.argv[1:]]))
