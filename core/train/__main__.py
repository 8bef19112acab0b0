"""``python -m core.train RUN_ID``: train one stored run in this process (see ``core.train.worker``)."""

from core.train.worker import main

raise SystemExit(main())
