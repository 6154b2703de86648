"""Bad values for the setting options, shared by the tests of the commands that take them."""

# An out-of-range value for every setting option, and the problem its error states.
OUT_OF_RANGE = {
    "--max-iters": ("-5", "must be between 1 and 1000000000, got -5"),
    "--eval-interval": ("0", "must be between 1 and 1000000000, got 0"),
    "--eval-iters": ("0", "must be between 1 and 1000000, got 0"),
    "--batch-size": ("0", "must be between 1 and 65536, got 0"),
    "--block-size": ("1", "must be between 2 and 4096, got 1"),
    "--n-layer": ("65", "must be between 1 and 64, got 65"),
    "--n-head": ("0", "must be between 1 and 64, got 0"),
    "--n-embd": ("5000", "must be between 1 and 4096, got 5000"),
    "--dropout": ("1", "must be in [0, 1), got 1.0"),
    "--lr": ("1.5", "must be in (0, 1], got 1.5"),
    "--warmup": ("-1", "must be between 0 and 1000000000, got -1"),
    "--temperature": ("0", "must be in (0, 10], got 0.0"),
    "--checkpoint-interval": ("-1", "must be between 0 and 1000000000, got -1"),
    "--seed": ("-1", "must be between 0 and 9223372036854775807, got -1"),
}
