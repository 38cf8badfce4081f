"""Which workers are alive and which jobs they hold: the facts the scheduler's sweep reads to find abandoned jobs."""
