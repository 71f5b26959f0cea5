"""`python -m bot.cli`: the same as the `hrd-bot` command."""

import sys

from bot.cli.commands import main

sys.exit(main())
