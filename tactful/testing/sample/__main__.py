"""``python -m tactful.testing.sample OUT_DIR --persons N``."""

from tactful.testing.sample.cli import main

raise SystemExit(main())
