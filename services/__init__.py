"""AdAgent's services: one package each, and the small shared runtime they all import."""
