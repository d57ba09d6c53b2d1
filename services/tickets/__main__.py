"""``python -m services.tickets``: the same start as ``helpdesk-process tickets``."""

import sys

from services.entrypoint import main

if __name__ == "__main__":
    sys.exit(main(["tickets"]))
