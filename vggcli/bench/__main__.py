"""python -m vggcli.bench [NAME ...] (make bench, make bench-cluster)."""
import sys

from .suite import main

sys.exit(main())
