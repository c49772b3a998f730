"""What the tests share that is not a fixture: helpers, harnesses and their types.

Test modules import from here and never from each other; fixtures live in the
`conftest.py` files.
"""
