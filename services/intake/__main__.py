"""``python -m services.intake``: the same start as ``helpdesk-process intake``."""

import sys

from services.entrypoint import main

if __name__ == "__main__":
    sys.exit(main(["intake"]))
