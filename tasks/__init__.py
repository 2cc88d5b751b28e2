"""Fabric tasks: thin wrappers that read settings, connect, and call the fikaso library."""
