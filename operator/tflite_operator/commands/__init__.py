"""The subcommands of `tflite-operator`: each module adds its parser and its handler.

A module exposes `register(subparsers)`, which adds the command's flags and sets
`handler=<function(args) -> exit code>`; cli.py only assembles them and dispatches.
"""
