"""python -m sparsenest.analysis.report: the `sparsenest report` command."""
import sys

from . import main

sys.exit(main())
