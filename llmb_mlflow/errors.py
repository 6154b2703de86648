"""The one exception type users see: its message is a single line saying what to fix."""


class LLMBError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
