"""Local fake servers that answer like the cloud providers' documented HTTP APIs, for tests through the real SDKs."""
