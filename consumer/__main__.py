"""`python -m consumer …` is `ocpp-consumer …`."""

import sys

from consumer.cli import main

sys.exit(main())
