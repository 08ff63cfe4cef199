"""The Bias Mirror app: shows what ``inference`` computes, adds no science of its own."""
from ._refcount_guard import protect_singletons

protect_singletons()  # PySide6 6.12 on Python 3.11 leaks references to None/True (see the module)
