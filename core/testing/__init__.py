"""Testing support for adamllm and its plugin authors.

``adamllm.testing`` is also a pytest plugin (entry point ``pytest11``): its fixtures are available
in any test suite once adamllm is installed. Contract test suites per component kind live here.
"""
from .helpers import registered_plugin

__all__ = ["registered_plugin"]
