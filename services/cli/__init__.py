"""The `adagent` command line: serve, create, events."""
