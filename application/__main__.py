"""`python -m application` is the `switchboard` command."""

import sys

from application.cli import main

sys.exit(main())
