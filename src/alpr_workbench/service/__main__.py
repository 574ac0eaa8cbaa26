"""``python -m alpr_workbench.service``: start the service (see :mod:`.run`)."""

import sys

from alpr_workbench.service.run import main

sys.exit(main())
