"""``python -m services.gateway``: the same start as ``helpdesk-process gateway``."""

import sys

from services.entrypoint import main

if __name__ == "__main__":
    sys.exit(main(["gateway"]))
