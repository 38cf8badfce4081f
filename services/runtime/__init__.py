"""Shared runtime: bus, event store, object storage, settings, logging, ffmpeg. Nothing service-specific."""
