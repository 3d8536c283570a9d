"""flotta's deterministic simulator: many nodes, one Trio run, everything from one seed.

Modules: world (nodes, the event queue, crashes), network, disk, clock, faults (plans),
trace (lines and digest), determinism (Trio's seeded scheduler), scenario (the runner
and registry), sweep (many seeds), cli (`python -m sim`), bench (speed figures).
See docs/simulator.md.
"""
