"""`python -m selfsup ...` is the `selfsup` command (as is `python -m selfsup.cli ...`)."""

import sys

from selfsup.cli import main

sys.exit(main())
