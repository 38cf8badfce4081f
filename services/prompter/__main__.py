"""`python -m services.prompter`: the prompter service alone, exactly as `adagent service prompter`."""

import sys

from services.cli.entry_point import run_service_module

if __name__ == "__main__":
    sys.exit(run_service_module("prompter"))
