"""Unit tier: pyproject's filterwarnings makes a DeprecationWarning attributed to kipctl's own
code (kip_runner.*, tests.*) an error, and keeps one raised inside a third-party library
ignored.

A library deprecates an API the way jax does (jax._src.deprecations) and numpy do:
warnings.warn(..., DeprecationWarning, stacklevel=2), which attributes the warning to the
module of the *caller*; the filter's module regex is matched against that module's __name__.
The modules below are built in memory under those names, so nothing is added to the package.
"""

import types
import warnings

import pytest

LIBRARY = '''
import warnings

def old_api():
    warnings.warn("old_api is deprecated", DeprecationWarning, stacklevel=2)
    return 1

def new_api():
    return old_api()  # the library's own use of its deprecated function
'''

CALLER = '''
def call(lib):
    return lib.old_api()
'''


def _module(name: str, source: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102
    return module


@pytest.fixture
def lib() -> types.ModuleType:
    return _module("some_thirdparty_lib", LIBRARY)


@pytest.mark.parametrize("caller", ["kip_runner.pipelines.probe", "kip_runner"])
def test_a_deprecated_call_from_kip_runner_is_an_error(lib, caller):
    with pytest.raises(DeprecationWarning, match="old_api is deprecated"):
        _module(caller, CALLER).call(lib)


def test_a_deprecated_call_from_the_tests_is_an_error(lib):
    with pytest.raises(DeprecationWarning, match="old_api is deprecated"):
        lib.old_api()  # attributed to this module, tests.test_deprecations


@pytest.mark.parametrize("caller", ["some_thirdparty_lib", "kip_runner_fork.x"])
def test_deprecations_elsewhere_stay_ignored(lib, caller):
    with warnings.catch_warnings(record=True) as seen:
        assert _module(caller, CALLER).call(lib) == 1  # not raised
        assert lib.new_api() == 1  # inside the library itself
    assert not [w for w in seen if issubclass(w.category, DeprecationWarning)]
