import sys

from tflite_operator.cli import main

sys.exit(main())
