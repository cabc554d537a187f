"""Fixtures the host modules share, found by pytest here instead of imported into each module
(an imported fixture that a test then takes as a parameter is a redefinition to ruff, F811).

`host`: a sim-driver session host on moto (test_session_host.py, where it is defined; function-scoped).
"""

from tests.host.test_session_host import host  # noqa: F401 - a fixture, found here by pytest
