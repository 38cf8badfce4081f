"""Step 3: when all N clips of a job are in (as the event store says), concatenate them, once per job."""
