"""`python -m ops`: see `ops.cli` for the commands."""

from ops.cli import main

raise SystemExit(main())
