"""`python -m services.gateway`: the gateway service alone, exactly as `adagent service gateway`."""

import sys

from services.cli.entry_point import run_service_module

if __name__ == "__main__":
    sys.exit(run_service_module("gateway"))
