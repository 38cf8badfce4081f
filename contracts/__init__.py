"""Wire contracts of AdAgent: the request, commands, events and their SSE mapping. No I/O here."""
