"""`python -m bot` runs the mailcheck CLI."""

from bot.cli import main

raise SystemExit(main())
