"""Fault-injection suite: host kills, routine crashes, memory bounds, stalls (slow)."""
