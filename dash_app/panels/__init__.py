"""The viewer's panels: one module per tab, menu or bar, owning its layout and its callbacks."""
