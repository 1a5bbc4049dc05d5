"""`python -m sqtool ...`: the same command line as the `sqtool` script (for an environment whose scripts folder
is not on PATH)."""
import sys

from sqtool.cli import main

sys.exit(main())
