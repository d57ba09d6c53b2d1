"""``python -m services.notify``: the same start as ``helpdesk-process notify``."""

import sys

from services.entrypoint import main

if __name__ == "__main__":
    sys.exit(main(["notify"]))
