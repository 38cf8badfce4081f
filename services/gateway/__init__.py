"""The Litestar gateway: creates jobs and streams their events back as SSE."""
