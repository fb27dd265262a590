"""Overspill: burst queue-driven workloads from a primary cluster to secondary clouds, and bring them home."""

__version__ = "0.1.0"
