"""spark-submit entry point: `seeknal-spark publish-online` (arguments are forwarded unchanged).

    ./spark-submit.sh publish_online [args...]
    spark-submit --py-files build/seeknal_spark.zip jobs/publish_online.py [args...]   # the same, by hand
"""

from __future__ import annotations

import sys

from seeknal_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["publish-online", *sys.argv[1:]]))
