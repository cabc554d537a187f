"""Fixtures the integration modules share, found by pytest here instead of imported into each module
(an imported fixture that a test then takes as a parameter is a redefinition to ruff, F811).

`stack`: the local gateway started by the launcher (test_session_lifecycle.py); `receiver`: a webhook
receiver on 127.0.0.1 (test_sim_messaging.py). Both are function-scoped, as where they are defined.
"""

from tests.integration.test_session_lifecycle import stack  # noqa: F401 - a fixture, found here by pytest
from tests.integration.test_sim_messaging import receiver  # noqa: F401 - a fixture, found here by pytest
