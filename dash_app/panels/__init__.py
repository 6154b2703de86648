"""One module per panel: a pure figure (or content) function, its layout and its callbacks."""
