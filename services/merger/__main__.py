"""`python -m services.merger`: the merger service alone, exactly as `adagent service merger`."""

import sys

from services.cli.entry_point import run_service_module

if __name__ == "__main__":
    sys.exit(run_service_module("merger"))
