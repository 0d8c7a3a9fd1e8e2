"""`python -m scaling.cli`: the `scaling` console script."""

import sys

from scaling.cli import main

sys.exit(main())
