import pytest


def test_rejects_a_string(create, q):
    # match is a regular expression: anchor it to demand exactly the original's message.
    with pytest.raises(TypeError, match="^Jobs is not an array$"):
        create("Hello", q)
