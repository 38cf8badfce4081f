"""The avatar's performance as numbers per frame: mouth shapes from the phonemes, blinks, head motion.

Pure functions of time (no pixels): `performance.perform` turns a `Speech` into a `PoseTrack` the renderer draws.
"""
