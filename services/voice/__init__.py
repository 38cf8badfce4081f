"""Step 4: make the voice even (loudness); step 5: store the final MP4 and produce its signed URL."""
