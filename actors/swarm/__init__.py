"""Swarm mode: managers (the store on Raft, orchestrator, scheduler, dispatcher) and workers."""
