"""Step 1: the script becomes N scene prompts, one spoken line each."""
