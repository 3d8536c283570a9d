"""The order services start and stop in, from their `depends_on`.

`dependency_order` is a topological order (every service after the services it
depends on); among services that are free to go at the same time, the one whose name
sorts first goes first, so the order is the same on every run. `shutdown_order` is its
reverse. A cycle is reported with its members in order: `a -> b -> c -> a`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from .model import Project


class DependencyCycle(ValueError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(cycle))


def find_cycle(dependencies: Mapping[str, Iterable[str]]) -> list[str] | None:
    """The first cycle met walking services in name order, closed (`[a, b, a]`), or None."""
    graph = {
        name: sorted(set(targets) & set(dependencies)) for name, targets in dependencies.items()
    }
    state: dict[str, int] = {}
    for root in sorted(graph):
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        trail: list[str] = [root]
        state[root] = 1
        while stack:
            node, index = stack[-1]
            targets = graph[node]
            if index == len(targets):
                stack.pop()
                trail.pop()
                state[node] = 2
                continue
            stack[-1] = (node, index + 1)
            target = targets[index]
            if state.get(target) == 1:
                start = trail.index(target)
                return [*trail[start:], target]
            if not state.get(target):
                state[target] = 1
                stack.append((target, 0))
                trail.append(target)
    return None


def order(dependencies: Mapping[str, Iterable[str]]) -> list[str]:
    """Kahn's algorithm with the smallest name first among the ready services."""
    graph = {name: set(targets) & set(dependencies) for name, targets in dependencies.items()}
    dependents: dict[str, set[str]] = {name: set() for name in graph}
    for name, targets in graph.items():
        for target in targets:
            dependents[target].add(name)
    waiting = {name: len(targets) for name, targets in graph.items()}
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        result.append(name)
        for dependent in dependents[name]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(result) != len(graph):
        cycle = find_cycle(graph)
        raise DependencyCycle(cycle or sorted(set(graph) - set(result)))
    return result


def service_dependencies(project: Project) -> dict[str, list[str]]:
    return {name: sorted(service.depends_on) for name, service in project.services.items()}


def dependency_order(project: Project, services: Iterable[str] | None = None) -> list[str]:
    """Start order of `services` (default: all enabled ones) and what they depend on."""
    dependencies = service_dependencies(project)
    if services is not None:
        wanted = with_dependencies(project, services)
        dependencies = {name: dependencies[name] for name in wanted}
    return order(dependencies)


def shutdown_order(project: Project, services: Iterable[str] | None = None) -> list[str]:
    return list(reversed(dependency_order(project, services)))


def with_dependencies(project: Project, services: Iterable[str]) -> set[str]:
    """`services` and everything they depend on, transitively. KeyError on unknown names."""
    wanted: set[str] = set()
    pending = list(services)
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        if name not in project.services:
            raise KeyError(name)
        wanted.add(name)
        pending.extend(project.services[name].depends_on)
    return wanted


def dependents_of(project: Project, service: str) -> set[str]:
    """Services that depend on `service`, transitively (they restart when it is recreated)."""
    found: set[str] = set()
    pending = [service]
    while pending:
        current = pending.pop()
        for name, candidate in project.services.items():
            if current in candidate.depends_on and name not in found:
                found.add(name)
                pending.append(name)
    return found
