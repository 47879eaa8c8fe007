"""One exception type for mistakes the user can fix; the CLI prints it as one line, exit 2."""


class UserError(Exception):
    """Bad input (spec, flag, file, name). The message names the problem and the fix."""
