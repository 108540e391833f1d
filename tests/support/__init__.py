"""Helpers shared by the test modules (the test modules never import one another).

``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject.toml), so a test imports these as ``support.<module>``.
"""
