"""Test-run settings for this repository's own suite."""

import os

import torch

# Two cores, `pytest -n 2`: one intra-op thread per worker avoids oversubscription.
torch.set_num_threads(1)
# The suite's own tests run the small derandomized profile unless told otherwise
# (--conformance-profile or CONFORMANCE_PROFILE=thorough for a nightly run).
os.environ.setdefault("CONFORMANCE_PROFILE", "ci")
pytest_plugins = ["pytester"]
