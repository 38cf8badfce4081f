"""The web page at `/`, driven in a real browser."""
