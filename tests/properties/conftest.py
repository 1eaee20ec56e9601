"""Property tests (hypothesis): invariants over many generated inputs.

They run with the rest of the suite and carry the `properties` marker (see tests/conftest.py):
select or skip them with `-m properties` / `-m "not properties"`, or by folder.
"""

from hypothesis import settings

# modest budgets: the whole suite runs in about a minute on 2 CPU cores
settings.register_profile("forecast", max_examples=40, deadline=None)
settings.load_profile("forecast")
