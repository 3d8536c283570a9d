"""Scenarios for `python -m sim <name>`: each module here sets `scenario = ...`.

The registry (sim.scenario.scenarios) imports every module of this package and keys the
scenarios it finds by name; a new scenario is a new module, no list to edit.
"""
