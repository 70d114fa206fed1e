"""`python -m sotag …` is the `sotag` command."""

import sys

from sotag.cli import main

sys.exit(main())
