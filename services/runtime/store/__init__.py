"""The append-only event store: SQLite embedded, PostgreSQL at scale, one interface."""
