"""Adapters: one module per external system, implementing the ports of the core."""
