"""Hypothesis profiles: how many examples each property draws, and whether runs repeat exactly."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, Verbosity, settings

# ci: small and derandomized, so a CI verdict is the same on every run.
# default: what a user gets. thorough: thousands of examples per property, for nightly runs.
PROFILES: dict[str, dict[str, object]] = {
    "ci": {"max_examples": 25, "derandomize": True},
    "default": {"max_examples": 100, "derandomize": False},
    "thorough": {"max_examples": 2000, "derandomize": False},
}

ENV_VAR = "CONFORMANCE_PROFILE"


def profile_name(profile: str | None = None) -> str:
    name = profile or os.environ.get(ENV_VAR) or "default"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return name


def hypothesis_settings(profile: str | None = None, max_examples: int | None = None,
                        shrink: bool = True) -> settings:
    chosen = dict(PROFILES[profile_name(profile)])
    if max_examples is not None:
        chosen["max_examples"] = max_examples
    if not shrink:  # a verdict without the minimal input: much faster on large failing cases
        chosen["phases"] = (Phase.explicit, Phase.reuse, Phase.generate)
    return settings(
        deadline=None,  # the first torch call of a process is slow; hangs have their own limit
        database=None,  # a verdict must not depend on what an earlier run stored
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
        **chosen,
    )
