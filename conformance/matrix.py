"""The conformance matrix as a pytest session: one test per implementation x spec x property x
dtype cell (conformance.pytest_plugin.matrix_tests), so that pytest-xdist and CI sharding
spread it over processes and machines.

    python -m pytest --pyargs conformance.matrix -n auto
    python -m pytest --pyargs conformance.matrix -n auto -k "kornia and float32"
    python -m pytest --pyargs conformance.matrix --conformance-profile=ci -n auto

Accepted deviations are xfails with their reason; a library that is not installed is skipped.
"""

from conformance.pytest_plugin import matrix_tests

test_cell = matrix_tests()
