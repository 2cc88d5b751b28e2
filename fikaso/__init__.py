"""Fikaso Deploy: put the Fikaso Docker Compose stack onto a VPS over SSH and keep it running."""
