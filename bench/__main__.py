"""``python -m bench``: run the pyrunc/runc comparison (see ``bench.compare``)."""

from bench.compare import main

raise SystemExit(main())
