"""``python -m thalovant.cli``."""

from __future__ import annotations

from thalovant.cli import main

raise SystemExit(main())
