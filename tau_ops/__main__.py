"""``python -m tau_ops``: the same command line as ``tau-ops``."""

from tau_ops.cli import main

raise SystemExit(main())
