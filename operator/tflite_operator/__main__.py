import sys

from tflite_operator.cli import main

# The guard matters: conversion workers are spawned processes, which import the parent's
# __main__ module (as __mp_main__) and must not run the CLI again.
if __name__ == "__main__":
    sys.exit(main())
