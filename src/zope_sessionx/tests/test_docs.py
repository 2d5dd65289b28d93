"""Run the examples of docs/*.rst as doctests."""
import doctest
import pathlib

import pytest


DOCS = pathlib.Path(__file__).resolve().parents[3] / 'docs'
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


# Only pages with examples: a page without any would be a test that
# cannot fail.
PAGES = sorted(path.name for path in DOCS.glob('*.rst')
               if '>>> ' in path.read_text(encoding='utf-8'))


def test_pages_found():
    assert 'using.rst' in PAGES


@pytest.mark.parametrize('name', PAGES)
def test_doctest(name):
    result = doctest.testfile(
        str(DOCS / name), module_relative=False, optionflags=FLAGS,
        encoding='utf-8', raise_on_error=False, report=True)
    assert result.attempted > 0
    assert result.failed == 0, result
