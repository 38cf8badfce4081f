"""The avatar's performance: what moves when (poses), and how the picture moves (the rig)."""
