"""``python -m tactful.sample OUT_DIR --persons N``."""

from tactful.sample.cli import main

raise SystemExit(main())
