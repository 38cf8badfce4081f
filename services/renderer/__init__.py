"""Step 2: one clip per message; clips render concurrently up to a configurable limit."""
