"""Errors a user can act on.

Every ``DataError`` message says what is wrong *and what to change*; pages show it as it is.
"""


class DataError(ValueError):
    """Input data that Gapscope cannot use as given. The message tells the user what to change."""
