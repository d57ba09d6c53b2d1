"""``python -m services.dev_escalation``: the same start as ``helpdesk-process dev-escalation``."""

import sys

from services.entrypoint import main

if __name__ == "__main__":
    sys.exit(main(["dev-escalation"]))
