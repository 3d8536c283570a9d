"""Raft for flotta: a sans-IO core (raft.py), its durable log (wal.py, snapshot.py), checkers."""
